"""Screening benchmark: classify the design of the 18,445 real abstracts of a PubMed daily update.

Reads ../shared/datasets/pubmed_daily_update_2021/pubmed21n1298_abstracts.csv.gz and runs
`classify_many` (publication types, text cues and the shipped text model) over all of them in a
child process: records/s (goal >= 10,000 on 2 cores) and the child's peak memory.

Usage: python scripts/bench_screen.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ABSTRACTS = Path("datasets/pubmed_daily_update_2021/pubmed21n1298_abstracts.csv.gz")

_CHILD = """
import csv, gzip, json, resource, sys, time
from collections import Counter
csv.field_size_limit(1 << 26)
with gzip.open(sys.argv[1], "rt", encoding="utf-8", newline="") as handle:
    rows = list(csv.DictReader(handle))
items = [(r["title"], r["abstract"], [t for t in r["publication_types"].split(";") if t])
         for r in rows]
from reviewpipe.design import classify_many, text_model
text_model()
start = time.perf_counter()
designs = classify_many(items)
seconds = time.perf_counter() - start
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
labels = Counter(d.label for d in designs)
print(json.dumps({"n": len(items), "seconds": seconds, "peak_mb": peak,
                  "labels": dict(labels.most_common())}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    args = parser.parse_args(argv)
    path = args.shared / ABSTRACTS
    if not path.exists():
        print(f"bench_screen: {path} is absent; nothing to benchmark (needs ../shared).")
        return 2
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    rate = result["n"] / result["seconds"]
    print(f"classify-design on {result['n']:,} real abstracts: {result['seconds']:.2f} s, "
          f"{rate:,.0f} records/s (goal >= 10,000), peak memory {result['peak_mb']:.0f} MB "
          "(largest process)")
    print("designs: " + ", ".join(f"{k} {v:,}" for k, v in result["labels"].items()))
    return 0 if rate >= 10_000 else 1


if __name__ == "__main__":
    sys.exit(main())
