"""Benchmark dedupe at scale: time, memory and quality against a seeded generator's truth.

Data: the 20,788 real records of ``datasets/pubmed_daily_update_2021/pubmed21n1298.xml.gz``
plus perturbed copies from ``reviewpipe.perturb.make_duplicates`` (seeded; the perturbations
and their probabilities are printed). At 100,000 records every real record is used once and
79,212 copies are added; smaller sizes draw the same share of originals.

For each size a fresh child process parses the file, generates the records and runs
``cluster_records``, so time and memory are those of one dedupe: wall time of the dedupe,
the peak resident memory while it ran (sampled every 20 ms) and the child's ``ru_maxrss``
(which includes parsing the XML). Goals (issue #4): 100k records in <= 20 s and <= 1.5 GB.

On a subset (``--subset``, default 5,000 records) the same data also goes through an all-pairs
rapidfuzz baseline (``process.cdist`` over every pair of normalised titles, ratio >= 95 and
years at most 1 apart); with ``--asreview`` through ASReview's deduplication as well
(``asreview-datatools`` ``dedup --similar``, defaults: DOI, title + abstract, threshold 0.98),
installed in a throwaway virtual environment under /tmp and run on ``--asreview-size``
records (default 2,000: its loop is quadratic in Python).

Usage: ``python scripts/bench_dedupe.py [--shared ../shared] [--sizes 25000,50000,100000]
[--subset 5000] [--asreview] [--seed 0]``.
Exit status: 0 once the tables are printed, 2 when the data is absent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
PUBMED = Path("datasets") / "pubmed_daily_update_2021" / "pubmed21n1298.xml.gz"
GOAL_SECONDS = 20.0
GOAL_MB = 1536.0
ASREVIEW_VENV = Path(tempfile.gettempdir()) / "reviewpipe-asreview-venv"
ASREVIEW_TIMEOUT = 900

if str(PROJECT / "src") not in sys.path:
    sys.path.insert(0, str(PROJECT / "src"))

from reviewpipe.clustering import cluster_records  # noqa: E402
from reviewpipe.perturb import PERTURBATIONS, make_duplicates  # noqa: E402
from reviewpipe.records import Record  # noqa: E402


def load_pubmed(path: Path) -> list[Record]:
    """The real records of the daily-update file (DeleteCitation entries left out)."""
    from reviewpipe.readers import read_records

    return [r for r in read_records(path, source="pubmed") if not r.deleted]


def pair_quality(groups: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``record_id -> cluster`` against the truth."""
    def pairs(assign: dict[str, str]) -> set[tuple[str, str]]:
        members: dict[str, list[str]] = defaultdict(list)
        for rid, group in assign.items():
            members[group].append(rid)
        out: set[tuple[str, str]] = set()
        for ids in members.values():
            out.update(itertools.combinations(sorted(ids), 2))
        return out

    found, true = pairs(groups), pairs(truth)
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": len(true),
            "false_pairs": len(found) - hits}


class PeakRSS:
    """Samples this process's resident memory in a thread while a block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        try:
            with open("/proc/self/statm", encoding="ascii") as handle:
                return int(handle.read().split()[1]) * self._page
        except OSError:  # not Linux: fall back to the lifetime peak
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.before = self.rss()
        self.peak = self.before
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def child(shared: Path, size: int, seed: int) -> dict[str, Any]:
    """One size in this (fresh) process: parse, generate, dedupe; the numbers as a dict."""
    start = time.perf_counter()
    originals = load_pubmed(shared / PUBMED)
    parsed = time.perf_counter()
    records, truth = make_duplicates(originals, size, random_state=seed)
    del originals
    generated = time.perf_counter()
    with PeakRSS() as memory:
        begin = time.perf_counter()
        result = cluster_records(records)
        seconds = time.perf_counter() - begin
    quality = pair_quality(result.cluster_of, truth)
    rules: dict[str, int] = defaultdict(int)
    for merge in result.merges:
        rules[merge["rule"].split(">")[0]] += 1
    return {"size": len(records), "parse_s": parsed - start, "generate_s": generated - parsed,
            "dedupe_s": seconds, "rss_before_mb": memory.before / 2**20,
            "rss_peak_mb": memory.peak / 2**20,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "queue": len(result.queue), "clusters": len(set(result.cluster_of.values())),
            "rules": dict(rules), **quality}


def run_child(shared: Path, size: int, seed: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--shared", str(shared), "--seed", str(seed),
               "--child", str(size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"size {size} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def all_pairs_baseline(records: list[Record]) -> tuple[dict[str, str], float]:
    """Every pair of normalised titles through rapidfuzz; ratio >= 95, years <= 1 apart."""
    import numpy as np
    from rapidfuzz import fuzz, process

    from reviewpipe.normalize import normalize_title

    start = time.perf_counter()
    titles = [normalize_title(r.title) for r in records]
    years = np.array([r.year or 0 for r in records])
    scores = process.cdist(titles, titles, scorer=fuzz.ratio, score_cutoff=95,
                           dtype=np.uint8, workers=-1)
    left, right = np.nonzero(np.triu(scores, k=1))
    parent = list(range(len(records)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if titles[i] and (not years[i] or not years[j] or abs(years[i] - years[j]) <= 1):
            parent[find(j)] = find(i)
    groups = {r.record_id: str(find(k)) for k, r in enumerate(records)}
    return groups, time.perf_counter() - start


def ours(records: list[Record]) -> tuple[dict[str, str], float]:
    start = time.perf_counter()
    result = cluster_records(records)
    return result.cluster_of, time.perf_counter() - start


ASREVIEW_SCRIPT = r"""
import json, sys
import pandas as pd
from asreview import ASReviewData
from asreviewcontrib.datatools import dedup

found = []
dedup._print_similar_list = lambda pairs, *a, **k: found.extend(pairs)
data = ASReviewData.from_file(sys.argv[1])
dedup.deduplicate_data(data, pid="doi", similar=True, threshold=0.98, verbose=True)
print(json.dumps([[int(i), int(j)] for i, j in found]))
"""


def asreview_python(venv: Path, base_python: str | None = None) -> tuple[Path | None, str]:
    """The throwaway venv's python with asreview + asreview-datatools, installing if needed."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import asreview, asreviewcontrib.datatools.dedup"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, "already installed"
    base = _python_312(base_python)
    if base is None:
        return None, "asreview-datatools needs Python >= 3.12; none found (pass --asreview-python)"
    start = time.perf_counter()
    try:
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "asreview",
                        "asreview-datatools"], check=True, capture_output=True,
                       timeout=ASREVIEW_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return None, f"pip install failed or timed out ({type(exc).__name__})"
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, "installed but does not import"
    return python, f"installed from PyPI in {time.perf_counter() - start:.0f} s"


def _python_312(given: str | None = None) -> str | None:
    """A Python >= 3.12 (asreview-datatools 1.4 uses 3.12 f-string syntax) that runs."""
    names = [given] if given else [
        shutil.which("python3.13"), shutil.which("python3.12"), sys.executable,
        *sorted(map(str, Path.home().glob(".pyenv/versions/3.1[2-9]*/bin/python3")))]
    for name in names:
        if name and subprocess.run(
                [name, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"],
                capture_output=True).returncode == 0:
            return name
    return None


def asreview_dedupe(python: Path, records: list[Record]) -> tuple[dict[str, str], float]:
    """ASReview's ``dedup --similar`` on the records, as clusters of the pairs it reports."""
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "records.csv"
        with data.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["record_id", "title", "abstract", "authors", "year", "doi"])
            for r in records:
                writer.writerow([r.record_id, r.title, r.abstract, "; ".join(r.authors),
                                 r.year or "", r.doi or ""])
        script = Path(tmp) / "run.py"
        script.write_text(ASREVIEW_SCRIPT, encoding="utf-8")
        start = time.perf_counter()
        done = subprocess.run([str(python), str(script), str(data)], capture_output=True,
                              text=True, check=True)
        seconds = time.perf_counter() - start
    parent = list(range(len(records)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, j in json.loads(done.stdout.strip().splitlines()[-1]):
        parent[find(j)] = find(i)
    return {r.record_id: str(find(k)) for k, r in enumerate(records)}, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared",
                        help="the shared data directory (default: ../shared)")
    parser.add_argument("--sizes", default="25000,50000,100000",
                        help="comma-separated record counts (default: 25000,50000,100000)")
    parser.add_argument("--subset", type=int, default=5000,
                        help="records for the all-pairs baseline comparison (default: 5000)")
    parser.add_argument("--asreview", action="store_true",
                        help="also run ASReview's dedup (installs it under /tmp if needed)")
    parser.add_argument("--asreview-size", type=int, default=2000,
                        help="records for the ASReview comparison (default: 2000)")
    parser.add_argument("--asreview-python", default=None, metavar="PYTHON",
                        help="a Python >= 3.12 to build ASReview's throwaway venv with")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    path = args.shared / PUBMED
    if not path.exists():
        print(f"Error: {path}: benchmark data not found. Pass --shared DIR (the directory "
              "holding datasets/pubmed_daily_update_2021).", file=sys.stderr)
        return 2
    if args.child:
        print(json.dumps(child(args.shared, args.child, args.seed)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"Generator: reviewpipe.perturb.make_duplicates(random_state={args.seed}); "
          "perturbation probabilities per copy:")
    print("  " + ", ".join(f"{k} {v:g}" for k, v in PERTURBATIONS.items()))
    print(f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}\n")
    head = (f"{'records':>8}{'dedupe s':>10}{'s/1k':>7}{'RSS before':>11}{'RSS peak':>10}"
            f"{'maxrss':>8}{'P':>8}{'R':>8}{'F1':>8}{'false pairs':>12}{'queue':>7}"
            f"{'parse s':>9}{'gen s':>7}")
    print(head)
    print("-" * len(head))
    rows = []
    for size in sizes:
        row = run_child(args.shared, size, args.seed)
        rows.append(row)
        per_1k = 1000 * row["dedupe_s"] / row["size"]
        print(f"{row['size']:>8}{row['dedupe_s']:>10.2f}{per_1k:>7.3f}"
              f"{row['rss_before_mb']:>10.0f}M{row['rss_peak_mb']:>9.0f}M"
              f"{row['maxrss_mb']:>7.0f}M{row['precision']:>8.4f}{row['recall']:>8.4f}"
              f"{row['f1']:>8.4f}{row['false_pairs']:>12}{row['queue']:>7}"
              f"{row['parse_s']:>9.1f}{row['generate_s']:>7.1f}", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = last["dedupe_s"] / first["dedupe_s"]
        print(f"\nGrowth {first['size']:,} -> {last['size']:,} records "
              f"(x{last['size'] / first['size']:.1f}): time x{growth:.2f}")
    big = max(rows, key=lambda r: r["size"]) if rows else None
    if big:
        print(f"Goal at {big['size']:,}: {big['dedupe_s']:.1f} s (<= {GOAL_SECONDS:g}: "
              f"{'met' if big['dedupe_s'] <= GOAL_SECONDS else 'MISSED'}), peak RSS "
              f"{big['rss_peak_mb']:.0f} MB during dedupe, {big['maxrss_mb']:.0f} MB for the "
              f"whole process (<= {GOAL_MB:.0f}: "
              f"{'met' if big['maxrss_mb'] <= GOAL_MB else 'MISSED'})")
        print(f"Merges by rule at {big['size']:,}: "
              + ", ".join(f"{k} {v}" for k, v in sorted(big["rules"].items())))

    originals = load_pubmed(path)
    comparisons = [("subset", args.subset)]
    if args.asreview:
        comparisons.append(("asreview", min(args.asreview_size, args.subset)))
    for kind, size in comparisons:
        records, truth = make_duplicates(originals, size, random_state=args.seed)
        methods: list[tuple[str, tuple[dict[str, str], float] | str]] = [
            ("reviewpipe (blocked)", ours(records)),
            ("all-pairs rapidfuzz", all_pairs_baseline(records))]
        if kind == "asreview":
            python, note = asreview_python(ASREVIEW_VENV, args.asreview_python)
            print(f"\nASReview: {note}")
            try:
                outcome = asreview_dedupe(python, records) if python else note
            except subprocess.CalledProcessError as exc:
                outcome = f"failed: {exc.stderr[-300:]}"
            methods.append(("asreview dedup --similar", outcome))
        print(f"\nSide by side on the same {size:,} records (seed {args.seed}):")
        print(f"{'method':<26}{'seconds':>9}{'est. 100k s':>13}{'P':>8}{'R':>8}{'F1':>8}")
        for name, outcome in methods:
            if isinstance(outcome, str):
                print(f"{name:<26}  not run: {outcome}")
                continue
            groups, seconds = outcome
            q = pair_quality(groups, truth)
            # Blocking grows about linearly; all-pairs methods with the square of the size.
            scale = (100_000 / size) ** (1 if name.startswith("reviewpipe") else 2)
            print(f"{name:<26}{seconds:>9.2f}{seconds * scale:>13.0f}{q['precision']:>8.4f}"
                  f"{q['recall']:>8.4f}{q['f1']:>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
