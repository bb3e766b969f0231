"""Stage 2, dedupe: records of one publication become one cluster; reports of one trial, one study.

Exact keys first (PMID, DOI, PMCID); then candidate pairs from blocks of rare title tokens (never
all pairs) scored with rapidfuzz. Declared rules decide; pairs near the threshold go to a human
queue instead of being merged. Different publications of one trial (protocol, registry entry,
results paper) are linked by their registration number as one ``study_id``, never merged.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from reviewpipe.errors import InputError
from reviewpipe.normalize import (
    author_key,
    first_author_surname,
    first_page,
    normalize_journal,
    normalize_title,
    title_flags,
)
from reviewpipe.protocol import Protocol
from reviewpipe.records import Record
from reviewpipe.runs import Run, StageResult
from reviewpipe.search import load_records
from reviewpipe.store import Store

# Declared decision rules. A merge needs MERGE_TITLE and no conflicting hard key; a pair between
# REVIEW_TITLE and MERGE_TITLE whose authors or year agree goes to a human.
MERGE_TITLE = 95.0
REVIEW_TITLE = 85.0
# A truncated title (a mirror's cut) merges when it is a prefix of at least this many words and
# the years agree, or the journal and first author do.
PREFIX_WORDS = 5
# Identical abstracts of at least this length are one publication (mirrors copy the abstract;
# a protocol and its results paper do not share one).
ABSTRACT_CHARS = 250
BLOCK_TOKENS = 3
MAX_BLOCK = 500
# Registration prefixes that name a trial (PROSPERO CRD numbers name reviews, so they don't link).
TRIAL_REGISTRIES = ("NCT", "ISRCTN", "ACTRN", "IRCT", "CTRI", "CHICTR", "DRKS", "EUCTR", "JPRN",
                    "KCT", "TCTR", "PACTR", "RBR", "NTR", "SLCTR")
SOURCE_RANK = {"pubmed": 0}
DECISION_COLUMNS = ["record_a", "record_b", "answer", "reviewer", "note", "date"]


@dataclass
class Clustering:
    """The outcome of deduplication."""

    cluster_of: dict[str, str]
    study_of: dict[str, str]
    merges: list[dict[str, Any]] = field(default_factory=list)
    queue: list[dict[str, Any]] = field(default_factory=list)
    study_links: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Keys:
    title: str
    flags: frozenset[str]
    surname: str
    first_author_tokens: frozenset[str]
    authors: frozenset[tuple[str, str]]
    year: int | None
    journal: str
    page: str
    doi: str | None
    pmid: str | None


def cluster_records(records: list[Record], *, answers: dict[frozenset[str], str] | None = None,
                    previous: dict[str, str] | None = None) -> Clustering:
    """Group records into clusters (same publication) and studies (same trial).

    Parameters
    ----------
    records : list of Record
    answers : dict, optional
        A reviewer's verdict per pair, ``frozenset({id_a, id_b}) -> "same" | "different"``;
        honoured before any rule.
    previous : dict, optional
        ``record_id -> cluster_id`` from an earlier run, so clusters keep their ids.
    """
    answers = answers or {}
    by_id = {r.record_id: r for r in records}
    keys = {r.record_id: _keys(r) for r in records}
    parent = {rid: rid for rid in by_id}
    merges: list[dict[str, Any]] = []
    queue: list[dict[str, Any]] = []
    forbidden = {pair for pair, answer in answers.items() if answer == "different"}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str, rule: str, scores: dict[str, Any]) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        parent[max(ra, rb)] = min(ra, rb)
        merges.append({"record_a": min(a, b), "record_b": max(a, b), "rule": rule, **scores})

    for pair, answer in sorted(answers.items(), key=lambda kv: sorted(kv[0])):
        a, b = sorted(pair)
        if answer == "same" and a in by_id and b in by_id:
            union(a, b, "reviewer:same", {})

    # Exact keys.
    for key_name in ("pmid", "doi", "pmcid"):
        groups: dict[str, list[str]] = defaultdict(list)
        for record in records:
            value = getattr(record, key_name)
            if value:
                groups[value].append(record.record_id)
        for value, ids in sorted(groups.items()):
            ids.sort()
            for other in ids[1:]:
                if frozenset((ids[0], other)) not in forbidden:
                    union(ids[0], other, f"exact:{key_name}", {"key": value})

    # Identical long abstracts: mirrors of one publication, titled or not.
    by_abstract: dict[str, list[str]] = defaultdict(list)
    for record in records:
        text = normalize_title(record.abstract)
        if len(text) >= ABSTRACT_CHARS:
            by_abstract[hashlib.sha1(text.encode("utf-8")).hexdigest()].append(record.record_id)
    for digest, ids in sorted(by_abstract.items()):
        ids.sort()
        for other in ids[1:]:
            if frozenset((ids[0], other)) not in forbidden and not _hard_conflict(
                    keys[ids[0]], keys[other], flags=False):
                union(ids[0], other, "exact:abstract", {"key": digest[:12]})

    # Fuzzy, within blocks of rare title tokens.
    for a, b in _candidate_pairs(keys):
        if find(a) == find(b) or frozenset((a, b)) in forbidden:
            continue
        verdict, scores = _compare(keys[a], keys[b])
        if verdict == "merge":
            rule = "fuzzy:title-prefix" if scores["title"] < MERGE_TITLE else (
                f"fuzzy:title>={MERGE_TITLE:g}")
            union(a, b, rule, scores)
        elif verdict == "review":
            queue.append({"record_a": a, "record_b": b, **scores,
                          "title_a": by_id[a].title, "title_b": by_id[b].title})

    members: dict[str, list[str]] = defaultdict(list)
    for rid in sorted(by_id):
        members[find(rid)].append(rid)
    cluster_of = _stable_ids(members.values(), previous or {}, prefix="C")
    queue = [q for q in queue if cluster_of[q["record_a"]] != cluster_of[q["record_b"]]]
    study_of, links = _studies(records, cluster_of)
    return Clustering(cluster_of=cluster_of, study_of=study_of, merges=merges, queue=queue,
                      study_links=links)


def canonical(records: list[Record]) -> tuple[Record, dict[str, str]]:
    """The best value of each field across a cluster's records, and where each came from."""
    ranked = sorted(records, key=lambda r: (SOURCE_RANK.get(r.source, 1), r.record_id))
    best = Record(**{**ranked[0].__dict__})
    provenance: dict[str, str] = {}
    for name in ("pmid", "pmcid", "doi", "title", "abstract", "authors", "journal",
                 "journal_iso", "year", "volume", "issue", "pages", "language",
                 "publication_types", "mesh", "keywords", "registrations", "abstract_sections"):
        candidates = [r for r in ranked if getattr(r, name)]
        if not candidates:
            continue
        if name in ("abstract", "authors", "abstract_sections"):
            # The fullest: longest abstract, longest author list (a mirror may truncate).
            chosen = max(candidates, key=lambda r: len(getattr(r, name)))
        elif name == "registrations":
            merged = sorted({reg for r in candidates for reg in r.registrations})
            best.registrations = merged
            provenance[name] = ";".join(r.record_id for r in candidates)
            continue
        else:
            chosen = candidates[0]
        setattr(best, name, getattr(chosen, name))
        provenance[name] = chosen.record_id
    return best, provenance


def dedupe(protocol: Protocol, store: Store, run: Run) -> StageResult:
    """Cluster the run's records; write clusters, merge log, review queue and canonical records."""
    records = load_records(run)
    answers = read_answers(protocol.path.with_name(f"{protocol.review_id}.dedupe.csv"))
    previous = _previous_clusters(store, run.run_id)
    result = cluster_records(records, answers=answers, previous=previous)

    by_cluster: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_cluster[result.cluster_of[record.record_id]].append(record)
    canon_rows = []
    for cluster_id in sorted(by_cluster):
        best, provenance = canonical(by_cluster[cluster_id])
        row = best.to_row()
        row.update(cluster_id=cluster_id, study_id=result.study_of[cluster_id],
                   n_records=len(by_cluster[cluster_id]),
                   record_ids=";".join(sorted(r.record_id for r in by_cluster[cluster_id])),
                   provenance=provenance)
        canon_rows.append((row, best))

    run.write_csv("clusters.csv", ["record_id", "cluster_id", "study_id"], (
        {"record_id": r.record_id, "cluster_id": result.cluster_of[r.record_id],
         "study_id": result.study_of[result.cluster_of[r.record_id]]}
        for r in sorted(records, key=lambda r: r.record_id)))
    run.write_csv("merge_log.csv", MERGE_LOG_COLUMNS, sorted(
        result.merges, key=lambda m: (m["record_a"], m["record_b"])))
    run.write_csv("dedupe_review.csv", REVIEW_COLUMNS, sorted(
        result.queue, key=lambda q: (q["record_a"], q["record_b"])))
    run.write_csv("study_links.csv", ["study_id", "cluster_id", "registration"],
                  sorted(result.study_links, key=lambda s: (s["study_id"], s["cluster_id"])))
    run.write_text("canonical.jsonl", "".join(
        best_record_json(row, best) + "\n" for row, best in canon_rows))
    store.replace_rows("clusters", run.run_id, (
        (rid, cid, result.study_of[cid]) for rid, cid in sorted(result.cluster_of.items())))
    store.append_decisions(run.run_id, (
        {"subject": m["record_b"], "stage": "dedupe", "decision": "merge",
         "reason": m["rule"], "evidence": f"merged with {m['record_a']}",
         "actor": "reviewer" if m["rule"].startswith("reviewer") else "rules:dedupe-v1"}
        for m in sorted(result.merges, key=lambda m: (m["record_a"], m["record_b"]))))
    counts = {"records": len(records), "clusters": len(by_cluster),
              "duplicates_removed": len(records) - len(by_cluster),
              "studies": len(set(result.study_of.values())), "review_queue": len(result.queue)}
    outputs = ("clusters.csv", "merge_log.csv", "dedupe_review.csv", "study_links.csv",
               "canonical.jsonl")
    run.record_stage("dedupe", counts=counts, outputs=outputs)
    return StageResult("dedupe", counts, outputs)


MERGE_LOG_COLUMNS = ["record_a", "record_b", "rule", "key", "title", "prefix", "year_gap",
                     "first_author", "journal", "page"]
REVIEW_COLUMNS = ["record_a", "record_b", "title", "prefix", "year_gap", "first_author",
                  "journal", "page", "title_a", "title_b"]


def best_record_json(row: dict[str, Any], best: Record) -> str:
    import json

    data = json.loads(best.to_json())
    data.update(cluster_id=row["cluster_id"], study_id=row["study_id"],
                n_records=row["n_records"], record_ids=row["record_ids"].split(";"),
                provenance=row["provenance"])
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def load_canonical(run: Run) -> list[dict[str, Any]]:
    """One canonical record (as a dict with cluster_id, study_id…) per cluster."""
    import json

    path = run.require("canonical.jsonl", "dedupe")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_answers(path: Path) -> dict[frozenset[str], str]:
    """A reviewer's same/different verdicts on queued pairs (``queries/<id>.dedupe.csv``)."""
    if not path.exists():
        return {}
    answers: dict[frozenset[str], str] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"record_a", "record_b", "answer"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}", line=1)
        for line, row in enumerate(reader, start=2):
            answer = (row["answer"] or "").strip().lower()
            if answer not in ("same", "different"):
                raise InputError(path, f"answer must be 'same' or 'different', got {answer!r}",
                                 line=line)
            answers[frozenset((row["record_a"].strip(), row["record_b"].strip()))] = answer
    return answers


def _keys(record: Record) -> _Keys:
    return _Keys(
        title=normalize_title(record.title), flags=title_flags(record.title),
        surname=first_author_surname(record.authors),
        first_author_tokens=_name_tokens(record.authors),
        authors=frozenset(k for k in (author_key(a) for a in record.authors[:20]) if k[0]),
        year=record.year, journal=normalize_journal(record.journal_iso or record.journal),
        page=first_page(record.pages), doi=record.doi, pmid=record.pmid,
    )


def _candidate_pairs(keys: dict[str, _Keys]) -> Iterable[tuple[str, str]]:
    """Pairs sharing one of their rarest title tokens; blocks above MAX_BLOCK are skipped."""
    tokens = {rid: set(k.title.split()) for rid, k in keys.items() if k.title}
    frequency = Counter(t for toks in tokens.values() for t in toks)
    blocks: dict[str, list[str]] = defaultdict(list)
    for rid, toks in tokens.items():
        rare = sorted((t for t in toks if len(t) > 2), key=lambda t: (frequency[t], t))
        for token in rare[:BLOCK_TOKENS]:
            blocks[token].append(rid)
    seen: set[tuple[str, str]] = set()
    for token in sorted(blocks):
        ids = sorted(blocks[token])
        if len(ids) > MAX_BLOCK:
            continue
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                if (a, b) not in seen:
                    seen.add((a, b))
                    yield a, b


def _name_tokens(authors: list[str]) -> frozenset[str]:
    """Name words of the first author, in any order ("Wang Weiming" = "Weiming Wang")."""
    for author in authors:
        if "et al" in author.lower():
            continue
        words = {w for w in normalize_title(author).split() if len(w) > 1}
        if words:
            return frozenset(words)
    return frozenset()


def _hard_conflict(a: _Keys, b: _Keys, *, flags: bool = True) -> bool:
    """Keys that prove two records are different publications.

    ``flags``: also when one title says protocol, erratum, reply or review and the other does
    not. Off for identical abstracts, where an uploader's title may have lost the word.
    """
    return bool((a.doi and b.doi and a.doi != b.doi) or (a.pmid and b.pmid and a.pmid != b.pmid)
                or (flags and a.title and b.title and a.flags != b.flags))


def _compare(a: _Keys, b: _Keys) -> tuple[str, dict[str, Any]]:
    title = fuzz.ratio(a.title, b.title)
    short, long = sorted((a.title, b.title), key=len)
    prefix = len(short.split()) >= PREFIX_WORDS and long.startswith(short) and short != long
    year_gap = abs(a.year - b.year) if a.year and b.year else None
    both_authors = bool(a.first_author_tokens and b.first_author_tokens)
    same_author = both_authors and bool(a.first_author_tokens & b.first_author_tokens)
    journal = fuzz.token_set_ratio(a.journal, b.journal) if a.journal and b.journal else None
    page = (a.page == b.page) if a.page and b.page else None
    scores = {"title": round(title, 1), "year_gap": year_gap,
              "first_author": same_author if both_authors else None,
              "journal": round(journal, 1) if journal is not None else None, "page": page,
              "prefix": prefix}
    # A cut title can lose its "protocol": then year and journal must both agree.
    cut_flag = prefix and a.flags != b.flags and not (
        a.flags if len(a.title) < len(b.title) else b.flags)
    same_venue = year_gap == 0 and journal is not None and journal >= 90
    conflict = (_hard_conflict(a, b, flags=not (cut_flag and same_venue))
                or (year_gap is not None and year_gap > 1)
                or scores["first_author"] is False or page is False)
    if conflict:
        return ("review" if title >= MERGE_TITLE else "none"), scores
    if title >= MERGE_TITLE:
        return "merge", scores
    if prefix and (year_gap == 0 or (journal is not None and journal >= 90 and same_author)):
        return "merge", scores
    if (title >= REVIEW_TITLE or prefix) and (same_author or year_gap == 0):
        return "review", scores
    return "none", scores


def _stable_ids(groups: Iterable[list[str]], previous: dict[str, str], prefix: str
                ) -> dict[str, str]:
    """Cluster ids that survive reruns: an old id when a member had one, else a content hash."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for ids in sorted(groups, key=lambda g: g[0]):
        old = sorted({previous[r] for r in ids if r in previous} - used)
        if old:
            cluster_id = old[0]
        else:
            cluster_id = prefix + hashlib.sha1(ids[0].encode("utf-8")).hexdigest()[:10]
            while cluster_id in used:
                cluster_id = prefix + hashlib.sha1(cluster_id.encode("utf-8")).hexdigest()[:10]
        used.add(cluster_id)
        for rid in ids:
            out[rid] = cluster_id
    return out


def _studies(records: list[Record], cluster_of: dict[str, str]
             ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Link clusters that share a trial registration number into one study."""
    parent = {cid: cid for cid in set(cluster_of.values())}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    by_registration: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for reg in record.registrations:
            if reg.upper().startswith(TRIAL_REGISTRIES):
                by_registration[reg.upper()].add(cluster_of[record.record_id])
    links = []
    for reg, clusters in sorted(by_registration.items()):
        ordered = sorted(clusters)
        for other in ordered[1:]:
            ra, rb = find(ordered[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        for cid in ordered:
            links.append({"cluster_id": cid, "registration": reg})
    study_of = {cid: "S" + find(cid)[1:] for cid in parent}
    for link in links:
        link["study_id"] = study_of[link["cluster_id"]]
    return study_of, [link for link in links if sum(
        1 for other in links if other["registration"] == link["registration"]) > 1]


def _previous_clusters(store: Store, run_id: str) -> dict[str, str]:
    row = store.db.execute(
        "SELECT c.run_id FROM clusters c JOIN runs r USING (run_id) WHERE r.status = 'complete' "
        "AND c.run_id != ? ORDER BY r.finished_at DESC, c.run_id DESC LIMIT 1", (run_id,)
    ).fetchone()
    if not row:
        return {}
    return dict(store.db.execute(
        "SELECT record_id, cluster_id FROM clusters WHERE run_id = ?", (row[0],)).fetchall())


def dedupe_files(paths: list[Path]) -> str:
    """Dedupe any mix of export files; CSV text of ``record_id, cluster_id, file`` rows.

    ``record_id`` is the input's own id (RIS ``ID``, PMID, or the CSV ``id``).
    """
    import io

    from reviewpipe.readers import read_records

    records: list[Record] = []
    for index, path in enumerate(paths):
        # The file's position keeps record ids apart when two files share a stem.
        records.extend(read_records(path, source=f"f{index}"))
    result = cluster_records(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record_id", "cluster_id", "file"])
    for record in sorted(records, key=lambda r: (r.file, r.source_id)):
        writer.writerow([record.source_id, result.cluster_of[record.record_id], record.file])
    return buffer.getvalue()
