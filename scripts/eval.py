"""`make eval`: every quality evaluation against ../shared, one after the other.

Each evaluation is its own script (scripts/eval_*.py) so it can be run alone; this one runs
those present, prints their output under a heading, and exits non-zero if any failed or if
../shared is absent.

Usage: python scripts/eval.py [--shared ../shared] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
EVALUATIONS = [
    ("dedupe", "eval_dedupe.py", "pairwise P/R/F1: corpus work_ids and bib_dedupe_benchmark"),
    ("screen", "eval_screen.py", "bundled review vs the corpus labels"),
    ("design", "eval_design.py", "RCT design model on the benchmark's test split"),
    ("extract", "eval_extract.py", "outcome extraction vs outcome_facts"),
    ("ranking", "eval_ranking.py", "active-learning ranking simulated on SYNERGY (WSS@95), "
                                   "side by side with `asreview simulate`"),
    ("pico", "eval_pico_evidence.py", "PICO token F1 (EBM-NLP), effect direction (Evidence "
                                      "Inference)"),
]

# ASReview runs in the same evaluation, in a throwaway virtual environment it creates when
# missing (scripts/eval_ranking.py says where).
EXTRA_ARGS = {"ranking": ["--asreview"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    parser.add_argument("--only", nargs="*", default=None, help="names: " + ", ".join(
        name for name, _, _ in EVALUATIONS))
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        print(f"make eval: {args.shared} is absent. The evaluations read the labelled data in "
              "../shared (beside the project root); nothing was evaluated.")
        return 2
    failed = []
    for name, script, what in EVALUATIONS:
        if args.only and name not in args.only:
            continue
        path = PROJECT / "scripts" / script
        print(f"\n=== {name}: {what}", flush=True)
        if not path.exists():
            print(f"(not available: scripts/{script} is missing)")
            failed.append(name)
            continue
        command = [sys.executable, str(path), "--shared", str(args.shared),
                   *EXTRA_ARGS.get(name, [])]
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            failed.append(name)
    verdict = "all evaluations met their goals" if not failed else "not met: " + ", ".join(failed)
    print(f"\nmake eval: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
