"""Score the dedupe rules against labelled duplicates in ../shared.

- ``corpus``: the bundled snapshot (``data/snapshots/dry-needling-pf``), read through the same
  readers as ``reviewpipe search``, against the ``work_id`` labels of ``corpus/records.jsonl``
  (173 labelled records; a PubMed record is mapped back to the corpus version it was built
  from, as the snapshot's README says).
- ``bib_dedupe_benchmark``: the four Rathbone et al. 2015 search exports (stroke, haematology,
  respiratory, cytology_screening) and ``special_cases``, against their labelled groups; the
  25 hand-written ``pairwise_test_cases.json`` pairs, each deduped on its own.

Pairwise precision, recall and F1 count record pairs put in one cluster; "false merges" are
pairs merged against the labels, as a percentage of the labelled duplicate pairs. Goals (issue
#4): F1 >= 0.99 per dataset, false merges <= 0.1 % of true pairs.

Usage: ``python scripts/eval_dedupe.py [--shared ../shared] [--show N]``.
Exit status: 0 once the table is printed, 2 when the shared directory is absent.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
SNAPSHOT = PROJECT / "data" / "snapshots" / "dry-needling-pf"
SNAPSHOT_FILES = (("pubmed.xml", "pubmed"), ("publisher-pmc.ris", "publisher-pmc"),
                  ("registries.ris", "registries"), ("indexes-mirrors.ris", "indexes-mirrors"))
BIB_SETS = ("stroke", "haematology", "respiratory", "cytology_screening", "special_cases")
GOAL_F1 = 0.99
GOAL_FALSE_MERGES = 0.1  # percent of true pairs

if str(PROJECT / "src") not in sys.path:
    sys.path.insert(0, str(PROJECT / "src"))

from reviewpipe.clustering import cluster_records  # noqa: E402
from reviewpipe.records import Record, normalize_doi, parse_year  # noqa: E402


@dataclass
class Score:
    """Pairwise counts for one dataset."""

    name: str
    records: int
    true_pairs: int
    predicted: int
    hits: int
    queue: int
    seconds: float
    misses: list[tuple[str, str]]
    false: list[tuple[str, str]]
    f1_reviewed: float | None = None

    @property
    def precision(self) -> float:
        return self.hits / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_merges(self) -> int:
        return self.predicted - self.hits

    @property
    def false_pct(self) -> float:
        return 100 * self.false_merges / self.true_pairs if self.true_pairs else 0.0

    def meets_goal(self) -> bool:
        return self.f1 >= GOAL_F1 and self.false_pct <= GOAL_FALSE_MERGES


def pairs_of(groups: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    """Every unordered pair inside each group, as sorted tuples."""
    out: set[tuple[str, str]] = set()
    for group in groups:
        out.update(itertools.combinations(sorted(set(group)), 2))
    return out


def score(name: str, records: list[Record], truth: set[tuple[str, str]],
          label: dict[str, str] | None = None) -> Score:
    """Cluster ``records`` and compare the pairs of the clusters with ``truth``.

    ``label`` maps record_id to the id the truth uses; records without one are left out of
    the pair counts (unlabelled on purpose) but are still clustered.
    """
    label = label or {r.record_id: r.record_id for r in records}
    start = time.perf_counter()
    result = cluster_records(records)
    seconds = time.perf_counter() - start
    predicted = _predicted(records, result.cluster_of, label)
    # What a reviewer answering the queue from the labels would leave: one more run with
    # those answers (unlabelled pairs stay unanswered).
    answers = {}
    for row in result.queue:
        a, b = row["record_a"], row["record_b"]
        if a in label and b in label:
            same = tuple(sorted((label[a], label[b]))) in truth
            answers[frozenset((a, b))] = "same" if same else "different"
    reviewed = _predicted(records, cluster_records(records, answers=answers).cluster_of, label)
    hits = len(reviewed & truth)
    p, r = (hits / len(reviewed) if reviewed else 1.0), (hits / len(truth) if truth else 1.0)
    return Score(name, len(records), len(truth), len(predicted), len(predicted & truth),
                 len(result.queue), seconds, sorted(truth - predicted), sorted(predicted - truth),
                 2 * p * r / (p + r) if p + r else 0.0)


def _predicted(records: list[Record], cluster_of: dict[str, str], label: dict[str, str]
               ) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.record_id in label:
            groups[cluster_of[record.record_id]].append(label[record.record_id])
    return pairs_of(groups.values())


def corpus_score(shared: Path) -> Score:
    """The bundled snapshot against the corpus work_ids."""
    from reviewpipe.readers import read_records
    from reviewpipe.snapshot_corpus import load_corpus
    from reviewpipe.snapshot_sources import choose_pubmed_versions

    corpus = load_corpus(shared / "corpus" / "records.jsonl")
    from_pmid = {pmid: r["rec_id"] for pmid, r in choose_pubmed_versions(corpus).items()}
    records: list[Record] = []
    for name, source in SNAPSHOT_FILES:
        records.extend(read_records(SNAPSHOT / name, source=source))
    work = {r["rec_id"]: r["work_id"] for r in corpus if r.get("work_id")}
    label = {}
    for record in records:
        rec_id = from_pmid[record.source_id] if record.source == "pubmed" else record.source_id
        if rec_id in work:
            label[record.record_id] = rec_id
    by_work: dict[str, list[str]] = defaultdict(list)
    for rec_id, work_id in work.items():
        by_work[work_id].append(rec_id)
    return score("corpus work_ids", records, pairs_of(by_work.values()), label)


def _cell(row: dict[str, Any], *names: str) -> str:
    for name in names:
        value = (row.get(name) or "").strip()
        if value and value.lower() not in ("none", "nan", "null"):
            return value
    return ""


def bib_record(row: dict[str, Any], source: str = "bib") -> Record:
    """One bib-dedupe row (BibTeX-style fields) as a Record."""
    authors = _cell(row, "author")
    names = [a.strip() for a in authors.replace(";", " and ").split(" and ") if a.strip()]
    return Record(
        record_id=f"{source}:{row['ID']}", source=source, source_id=row["ID"],
        title=_cell(row, "title"), authors=names,
        journal=_cell(row, "journal", "booktitle", "container_title") or None,
        year=parse_year(_cell(row, "year")), volume=_cell(row, "volume") or None,
        issue=_cell(row, "number", "issue") or None, pages=_cell(row, "pages") or None,
        doi=normalize_doi(_cell(row, "doi")), abstract=_cell(row, "abstract"),
    )


def bib_score(folder: Path) -> Score:
    """One bib-dedupe dataset against its merged_record_ids.csv groups."""
    with (folder / "records_pre_merged.csv").open(encoding="utf-8", newline="") as handle:
        records = [bib_record(row) for row in csv.DictReader(handle)]
    with (folder / "merged_record_ids.csv").open(encoding="utf-8", newline="") as handle:
        groups = [row["merged_ids"].split(";") for row in csv.DictReader(handle)]
    label = {r.record_id: r.source_id for r in records}
    return score(folder.name, records, pairs_of(groups), label)


def pairwise_cases(path: Path) -> tuple[Score, list[str]]:
    """The hand-written pairs, each clustered alone; a Score over the 25 pairs."""
    cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
    hits = predicted = true_pairs = 0
    wrong: list[str] = []
    start = time.perf_counter()
    for case in cases:
        a = bib_record(case["record_a"], source="a")
        b = bib_record(case["record_b"], source="b")
        result = cluster_records([a, b])
        same = result.cluster_of[a.record_id] == result.cluster_of[b.record_id]
        expected = bool(case["expected_duplicate"])
        true_pairs += expected
        predicted += same
        hits += same and expected
        if same != expected:
            wrong.append(f"{case['id']}: expected {'same' if expected else 'different'}")
    seconds = time.perf_counter() - start
    return Score("pairwise_test_cases", 2 * len(cases), true_pairs, predicted, hits, 0, seconds,
                 [], [], None), wrong


def table(scores: list[Score]) -> str:
    """A fixed-width table of the scores."""
    head = (f"{'dataset':<22}{'records':>8}{'true pairs':>11}{'P':>8}{'R':>8}{'F1':>8}"
            f"{'false merges':>13}{'% of true':>10}{'queue':>7}{'F1 queue done':>14}"
            f"{'seconds':>9}  goal")
    lines = [head, "-" * len(head)]
    for s in scores:
        reviewed = f"{s.f1_reviewed:.4f}" if s.f1_reviewed is not None else "-"
        lines.append(f"{s.name:<22}{s.records:>8}{s.true_pairs:>11}{s.precision:>8.4f}"
                     f"{s.recall:>8.4f}{s.f1:>8.4f}{s.false_merges:>13}{s.false_pct:>9.2f}%"
                     f"{s.queue:>7}{reviewed:>14}{s.seconds:>9.2f}  "
                     f"{'met' if s.meets_goal() else 'MISSED'}")
    lines.append("(F1 queue done: after a reviewer answers dedupe_review.csv from the labels "
                 "and the rules run again.)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=PROJECT.parent / "shared",
                        help="the shared data directory (default: ../shared)")
    parser.add_argument("--show", type=int, default=0, metavar="N",
                        help="also list up to N missed and N false pairs per dataset")
    args = parser.parse_args(argv)
    bench = args.shared / "datasets" / "bib_dedupe_benchmark"
    if not (args.shared / "corpus" / "records.jsonl").exists() or not bench.is_dir():
        print(f"Error: {args.shared}: shared data not found (needs corpus/records.jsonl and "
              "datasets/bib_dedupe_benchmark). Pass --shared DIR.", file=sys.stderr)
        return 2
    scores = [corpus_score(args.shared)]
    scores += [bib_score(bench / name) for name in BIB_SETS if (bench / name).is_dir()]
    cases, wrong = pairwise_cases(bench / "pairwise_test_cases.json")
    scores.append(cases)
    print(table(scores))
    for line in wrong:
        print(f"  pairwise case wrong: {line}")
    for s in scores:
        for kind, pairs in (("missed", s.misses), ("false", s.false)):
            for a, b in pairs[:args.show]:
                print(f"  {s.name} {kind}: {a} {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
