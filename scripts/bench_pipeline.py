"""Pipeline benchmarks: `make review` on the bundled snapshot, and an update with nothing new.

1. The whole offline review (search to report) on the bundled snapshot, in a temporary project
   root, after one warm-up run (goal <= 10 s).
2. `update` against the local E-utilities stand-in serving the snapshot's PubMed XML, run twice:
   the second finds nothing new (goal <= 2 s plus network time; network time is the stand-in's
   answer time plus NCBI's rate limit, reported separately).

Usage: python scripts/bench_pipeline.py
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
REVIEW = "dry-needling-pf"


def _project(tmp: Path) -> Path:
    shutil.copytree(PROJECT / "queries", tmp / "queries")
    shutil.copytree(PROJECT / "data" / "snapshots", tmp / "data" / "snapshots")
    return tmp


def main() -> int:
    sys.path.insert(0, str(PROJECT / "tests"))
    from eutils_standin import EutilsStandin
    from reviewpipe.pipeline import run_review
    from reviewpipe.update import update_review

    with tempfile.TemporaryDirectory() as tmp:
        root = _project(Path(tmp))
        run_review(root, REVIEW)  # warm-up: imports, caches
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run_review(root, REVIEW)
            times.append(time.perf_counter() - start)
        review = statistics.median(times)
        print(f"review (search to report, offline snapshot): median {review:.2f} s of 3 runs "
              f"(goal <= 10 s)")
        snapshot = (root / "data" / "snapshots" / REVIEW / "pubmed.xml").read_bytes()
        with EutilsStandin(articles=snapshot) as standin:
            env = {"NCBI_EMAIL": "bench@example.org", "NCBI_API_KEY": "bench-key",
                   "REVIEWPIPE_EUTILS_URL": standin.base_url}
            update_review(root, REVIEW, environ=env, today=date(2026, 11, 28))
            before = len(standin.requests)
            start = time.perf_counter()
            result = update_review(root, REVIEW, environ=env, today=date(2026, 11, 28))
            seconds = time.perf_counter() - start
            requests = standin.requests[before:]
        network = sum(r.end - r.start for r in requests) + 0.11 * max(0, len(requests) - 1)
        print(f"update with nothing new: {seconds:.2f} s total, {len(requests)} requests, "
              f"network and rate-limit time about {network:.2f} s, local work "
              f"{seconds - network:.2f} s (goal <= 2 s); new records {result.new_records}, "
              f"exit code {result.exit_code}")
        ok = review <= 10 and seconds - network <= 2 and result.new_records == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
