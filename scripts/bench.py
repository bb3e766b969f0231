"""`make bench`: speed and memory benchmarks, one script each (scripts/bench_*.py).

Runs those present and prints their figures under a heading. The search and dedupe benchmarks
read ../shared; when it is absent they say so and are skipped. Goals are checked here, never in
the test suite.

Usage: python scripts/bench.py [--shared ../shared] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BENCHMARKS = [
    ("pipeline", "bench_pipeline.py", False, "make review and an update with nothing new"),
    ("update", "bench_update.py", False, "update cost against review size (stand-in, synthetic)"),
    ("search", "bench_search.py", True, "PubMed XML parse rate and rate-limited fetch"),
    ("dedupe", "bench_dedupe.py", True, "100k records: time, memory, quality, baselines"),
    ("screen", "bench_screen.py", True, "design classification of 18,445 real abstracts"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args(argv)
    shared = args.shared.is_dir()
    if not shared:
        print(f"make bench: {args.shared} is absent, so the benchmarks on real data (search, "
              "dedupe, screen) are skipped; only the pipeline benchmark runs.")
    missed = []
    for name, script, needs_shared, what in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name}: {what}", flush=True)
        path = PROJECT / "scripts" / script
        if not path.exists():
            print(f"(not available: scripts/{script} is missing)")
            missed.append(name)
            continue
        if needs_shared and not shared:
            print("(skipped: needs ../shared)")
            continue
        command = [sys.executable, str(path)] + (["--shared", str(args.shared)]
                                                 if needs_shared else [])
        if subprocess.run(command, check=False).returncode != 0:
            missed.append(name)
    print("\nmake bench: " + ("every goal met" if not missed else
                              "goals missed or not run: " + ", ".join(missed)))
    return 1 if missed or not shared else 0


if __name__ == "__main__":
    sys.exit(main())
