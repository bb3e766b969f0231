"""Screening of the bundled review against the labelled part of ../shared/corpus.

Runs the whole pipeline on the bundled snapshot in a temporary project root, maps every record
back to its corpus record (RIS records carry the corpus rec_id; PubMed records the PMID, whose
version the snapshot builder chose), and compares each labelled record's cluster decision with
its label: every eligible publication included; no protocol, registry record, review or
secondary analysis included; the exclusion reason right for >= 95%.

Usage: python scripts/eval_screen.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
REVIEW = "dry-needling-pf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared")
    args = parser.parse_args(argv)
    corpus_path = args.shared / "corpus" / "records.jsonl"
    if not corpus_path.exists():
        print(f"eval_screen: {corpus_path} is absent; nothing to evaluate (needs ../shared).")
        return 2

    from reviewpipe.pipeline import run_review
    from reviewpipe.snapshot_corpus import load_corpus
    from reviewpipe.snapshot_sources import choose_pubmed_versions

    corpus = load_corpus(corpus_path)
    by_rec = {r["rec_id"]: r for r in corpus}
    pubmed_choice = {pmid: rec["rec_id"] for pmid, rec in choose_pubmed_versions(corpus).items()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(PROJECT / "queries", root / "queries")
        shutil.copytree(PROJECT / "data" / "snapshots", root / "data" / "snapshots")
        run = run_review(root, REVIEW)
        clusters = _rows(run.dir / "clusters.csv")
        records = {r["record_id"]: r for r in _rows(run.dir / "records.csv")}
        screening = {r["cluster_id"]: r for r in _rows(run.dir / "screening.csv")}

    results = []
    for row in clusters:
        record = records[row["record_id"]]
        rec_id = (pubmed_choice.get(record["pmid"]) if record["source"] == "pubmed"
                  else record["source_id"])
        label = by_rec.get(rec_id or "")
        if not label or label.get("exclusion_reason") is None:
            continue
        decision = screening[row["cluster_id"]]
        results.append((label, decision))

    eligible = [(lab, dec) for lab, dec in results if lab["eligible"] == "yes"]
    missed = [(lab, dec) for lab, dec in eligible if dec["decision"] != "include"]
    bad_designs = {"rct_protocol", "registry_entry", "systematic_review", "narrative_review",
                   "secondary_analysis"}
    wrongly_in = [(lab, dec) for lab, dec in results
                  if lab["design"] in bad_designs and dec["decision"] == "include"]
    excluded = [(lab, dec) for lab, dec in results if lab["eligible"] != "yes"]
    # A record the labeller marked eligibility "unclear" is handled right when it goes to a human.
    reason_right = sum(dec["reason"] == lab["exclusion_reason"] or (
        lab["eligible"] == "unclear" and dec["decision"] == "uncertain") for lab, dec in excluded)
    confusion = Counter((lab["exclusion_reason"], dec["decision"], dec["reason"])
                        for lab, dec in results)
    print(f"labelled records evaluated: {len(results)} (of {len(clusters)} records read)")
    print(f"eligible included: {len(eligible) - len(missed)}/{len(eligible)}")
    print(f"protocols/registry records/reviews/secondary analyses included: {len(wrongly_in)}")
    share = reason_right / len(excluded) if excluded else 1.0
    print(f"exclusion reason right: {reason_right}/{len(excluded)} ({share:.1%}; goal >= 95%; "
          "'unclear' labels sent to a human count as right)")
    print("label reason -> machine decision/reason:")
    for (truth, decision, reason), n in sorted(confusion.items()):
        print(f"  {truth:18s} -> {decision}/{reason}: {n}")
    for lab, dec in missed + wrongly_in:
        print(f"  ! {lab['rec_id']} {lab['design']} labelled {lab['eligible']}: machine "
              f"{dec['decision']}/{dec['reason']} ({dec['doubt'] or dec['evidence'][:120]})")
    ok = not missed and not wrongly_in and share >= 0.95
    print(f"goals {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


if __name__ == "__main__":
    sys.exit(main())
