"""Add new records to a finished run's clusters without clustering the old records again.

An update run holds the previous run's records plus a few new ones. Only the new records are
compared, and only with the old records they could match: those sharing a PMID, PMCID or DOI,
one of the new record's rarest title words, or its year and first page. Those candidates and
the new records are clustered together, the candidates' previous clusters held together and no
pair of two old records scored again; every cluster no new record touched is carried forward as
it was, id, canonical record and log rows included.

``audit verify`` re-derives each run by clustering all of its records from scratch, so an
update whose clusters differ from a full run is reported there.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from reviewpipe.dedupe import (
    BLOCK_TOKENS,
    CANONICAL_CLUSTER_ID,
    MAX_BLOCK,
    Clustering,
    _studies,
    best_record_json,
    canonical,
    cluster_records,
    questions,
)
from reviewpipe.normalize import first_page
from reviewpipe.records import Record
from reviewpipe.runs import Run

# Raw title words for finding candidates: cheaper than the normalised keys that dedupe scores
# with, and a superset of what blocking needs (normalising only removes distinctions).
_WORD = re.compile(r"[^\W_]{3,}")
# A new record may share more rare words with old records than blocking uses; a few more are
# taken so that a word normalisation would merge or split is not the only link.
CANDIDATE_WORDS = BLOCK_TOKENS + 2
_STUDY_ID = re.compile(r'"study_id": "([^"]+)"')


@dataclass
class Extension:
    """An earlier run's clustering with new records added."""

    clustering: Clustering
    canonical_lines: list[str]
    new_merges: list[dict[str, Any]]
    new_records: int
    candidates: int
    affected: list[str]


def candidate_records(old: list[Record], new: list[Record]) -> list[Record]:
    """The old records a new record could be a duplicate of (see the module's docstring)."""
    new_words = {r.record_id: set(_WORD.findall((r.title or "").lower())) for r in new}
    wanted = set().union(*new_words.values()) if new_words else set()
    ids = {(name, getattr(r, name)) for r in new for name in ("pmid", "pmcid", "doi")
           if getattr(r, name)}
    citations = {(r.year, first_page(r.pages)) for r in new if r.year and first_page(r.pages)}
    years = {year for year, _ in citations}
    frequency: Counter[str] = Counter()
    having: dict[str, list[int]] = defaultdict(list)
    chosen: set[int] = set()
    for i, record in enumerate(old):
        if any((name, getattr(record, name)) in ids for name in ("pmid", "pmcid", "doi")):
            chosen.add(i)
        if record.year in years and (record.year, first_page(record.pages)) in citations:
            chosen.add(i)
        for word in wanted.intersection(_WORD.findall((record.title or "").lower())):
            frequency[word] += 1
            having[word].append(i)
    for words in new_words.values():
        rare = sorted((frequency[w], w) for w in words if 0 < frequency[w] <= MAX_BLOCK)
        for _, word in rare[:CANDIDATE_WORDS]:
            chosen.update(having[word])
    return [old[i] for i in sorted(chosen)]


def extend_clusters(records: list[Record], since: Run, answers: dict[frozenset[str], str]
                    ) -> Extension | None:
    """Cluster ``records`` by adding those ``since`` did not have to its clusters.

    Returns None when that would not give what clustering from scratch gives, so the caller
    clusters everything: a record of ``since`` is missing or changed, or the reviewers'
    answers differ from those ``since`` was clustered with.
    """
    previous = {r["record_id"]: r["cluster_id"] for r in since.read_csv("clusters.csv", "dedupe")}
    by_id = {r.record_id: r for r in records}
    if not previous.keys() <= by_id.keys() or answers != _answers_of(since):
        return None
    old = [by_id[rid] for rid in sorted(previous)]
    new = [r for r in records if r.record_id not in previous]
    candidates = candidate_records(old, new)
    groups: dict[str, list[str]] = defaultdict(list)
    for record in candidates:
        groups[previous[record.record_id]].append(record.record_id)
    part = cluster_records(candidates + new, answers=answers, previous=previous,
                           keep=groups.values(), new={r.record_id for r in new})
    # A new record that matches two old clusters joins them: the one with the smaller id stays.
    renamed = {previous[r.record_id]: part.cluster_of[r.record_id] for r in candidates
               if part.cluster_of[r.record_id] != previous[r.record_id]}
    cluster_of = {rid: renamed.get(cid, cid) for rid, cid in previous.items()}
    cluster_of.update({r.record_id: part.cluster_of[r.record_id] for r in new})
    study_of, links = _studies(records, cluster_of)

    merges = [*since.read_csv("merge_log.csv", "dedupe"), *part.merges]
    queue = questions([*since.read_csv("dedupe_review.csv", "dedupe"), *part.queue], cluster_of,
                      list(answers))
    affected = sorted({cluster_of[r.record_id] for r in new} | set(renamed.values()))
    lines = _canonical_lines(since, records, cluster_of, study_of, set(affected),
                             set(renamed))
    clustering = Clustering(cluster_of=cluster_of, study_of=study_of, merges=merges,
                            queue=queue, study_links=links)
    return Extension(clustering, lines, part.merges, len(new), len(candidates), affected)


def _canonical_lines(since: Run, records: list[Record], cluster_of: dict[str, str],
                     study_of: dict[str, str], affected: set[str], gone: set[str]) -> list[str]:
    """canonical.jsonl: old lines kept as they were (study id updated if it changed), the
    clusters new records joined built again from all their records."""
    lines: dict[str, str] = {}
    with since.require("canonical.jsonl", "dedupe").open(encoding="utf-8") as handle:
        for line in handle:
            match = CANONICAL_CLUSTER_ID.search(line)
            if not match or match.group(1) in affected or match.group(1) in gone:
                continue
            cluster_id = match.group(1)
            study = _STUDY_ID.search(line)
            if study and study.group(1) == study_of[cluster_id]:
                lines[cluster_id] = line.rstrip("\n")
            else:  # another cluster of the same trial arrived: the study id changed
                data = json.loads(line)
                data["study_id"] = study_of[cluster_id]
                lines[cluster_id] = json.dumps(data, ensure_ascii=False, sort_keys=True)
    members: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if cluster_of[record.record_id] in affected:
            members[cluster_of[record.record_id]].append(record)
    for cluster_id, group in members.items():
        best, provenance = canonical(group)
        row = {"cluster_id": cluster_id, "study_id": study_of[cluster_id],
               "n_records": len(group), "record_ids": sorted(r.record_id for r in group),
               "provenance": provenance}
        lines[cluster_id] = best_record_json(row, best)
    return [lines[cid] for cid in sorted(lines)]


def _answers_of(run: Run) -> dict[frozenset[str], str]:
    """The reviewers' dedupe answers a run was made with (its ``inputs/`` copy)."""
    from reviewpipe.dedupe import read_answers

    copies = sorted(run.path("inputs").glob("*.dedupe.csv")) if run.path("inputs").is_dir() \
        else []
    answers: dict[frozenset[str], str] = {}
    for path in copies:
        answers.update(read_answers(path))
    return answers
