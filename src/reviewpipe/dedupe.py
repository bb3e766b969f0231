"""Stage 2, dedupe: cluster a run's records by the rules of :mod:`reviewpipe.clustering`, and
write the clusters, the merge log, the review queue and one canonical record per cluster.
"""

from __future__ import annotations

import csv
import io
import json
import mmap
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from reviewpipe.clustering import REVIEW_COLUMNS, RULES, Clustering, cluster_records
from reviewpipe.dedupe_update import (
    INDEX,
    Extension,
    build_index,
    extend_clusters,
    extended_lines,
    index_text,
)
from reviewpipe.errors import InputError
from reviewpipe.memo import csv_line, find_line, parse_csv_line, stage_key
from reviewpipe.protocol import Protocol
from reviewpipe.records import Record, line_record_id
from reviewpipe.runs import Run, StageResult, csv_text
from reviewpipe.search import load_records
from reviewpipe.store import Store

SOURCE_RANK = {"pubmed": 0}
CANONICAL_CLUSTER_ID = re.compile(r'"cluster_id": "([^"]+)"')
_CANONICAL_ID = re.compile(CANONICAL_CLUSTER_ID.pattern.encode())
# Up to this many clusters, load_canonical looks each one up instead of scanning the file.
FEW = 256
# Top-level keys of a JSON line (a key's quotes cannot occur unescaped inside a string value).
_STUDY_ID = re.compile(rb'"study_id": "([^"]+)"')
DECISION_COLUMNS = ["record_a", "record_b", "answer", "reviewer", "note", "date"]
# Scores of a rule merge: title (0-100), prefix (the title score came from a cut title or one
# language's part), year_gap, and whether first author, journal, first page, volume and DOI
# agree (empty: one side lacks it); authors is the share of family names in common. An exact
# merge logs its key instead.
MERGE_LOG_COLUMNS = ["record_a", "record_b", "rule", "key", "title", "prefix", "year_gap",
                     "first_author", "journal", "page", "volume", "authors", "doi"]


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


def dedupe(protocol: Protocol, store: Store, run: Run, *, since: Run | None = None
           ) -> StageResult:
    """Cluster the run's records; write clusters, merge log, review queue and canonical records.

    With ``since`` (an update's previous run), only the records ``since`` did not have are
    matched, against its clusters (:mod:`reviewpipe.dedupe_update`); the other clusters keep
    their ids, rows and canonical lines, and only the merges made now are logged. When that
    cannot stand for a full run (code, protocol or the reviewer's answers changed since, or an
    old record changed), every record is clustered again.
    """
    answers = read_answers(protocol.path.with_name(f"{protocol.review_id}.dedupe.csv"))
    key = index_key(protocol, answers)
    extension = extend_clusters(run, since, answers, key) if since is not None else None
    if since is not None and extension is not None:
        return _write_extension(store, run, since, extension, len(answers))
    records = load_records(run)
    result = cluster_records(records, answers=answers,
                             previous=_previous_clusters(store, run.run_id))
    reusable = _reusable_canonical(run, since, result) if since is not None else {}
    lines = _canonical_lines(records, result, reusable)
    ordered = sorted(records, key=lambda r: r.record_id)
    index = build_index(ordered, result.keys, result.cluster_of, key)
    logged = set() if since is None else {
        (m["record_a"], m["record_b"], m["rule"]) for m in since.read_csv("merge_log.csv",
                                                                           "dedupe")}
    _write(run, result, _merge_log(result.merges),
           "".join(line + "\n" for line in lines).encode("utf-8"), index)
    store.replace_rows("clusters", run.run_id, (
        (rid, cid, result.study_of[cid]) for rid, cid in sorted(result.cluster_of.items())))
    _log_merges(store, run, [m for m in result.merges
                             if (m["record_a"], m["record_b"], m["rule"]) not in logged])
    carried = {"carried_from": since.run_id, "canonical_reused": len(reusable)} \
        if since is not None else {}
    return _record(run, result, len(answers), carried)


def index_key(protocol: Protocol, answers: dict[frozenset[str], str]) -> str:
    """What a run's dedupe index depends on beyond the records: the dedupe code, the protocol
    and the reviewer's answers."""
    return stage_key(protocol, ("clustering", "pair_rules", "normalize", "dedupe",
                                "dedupe_update", "records"),
                     extra=sorted([sorted(pair), answer] for pair, answer in answers.items()))


OUTPUTS = ("clusters.csv", "merge_log.csv", "dedupe_review.csv", "study_links.csv",
           "canonical.jsonl", INDEX)


def _write(run: Run, result: Clustering, merge_log: str | bytes, canonical: bytes,
           index: dict[str, Any]) -> None:
    cluster_of, study_of = result.cluster_of, result.study_of
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record_id", "cluster_id", "study_id"])
    writer.writerows((rid, cluster_of[rid], study_of[cluster_of[rid]])
                     for rid in sorted(cluster_of))
    run.write_text("clusters.csv", buffer.getvalue())
    run.write_bytes("merge_log.csv", merge_log if isinstance(merge_log, bytes)
                    else merge_log.encode("utf-8"))
    run.write_csv("dedupe_review.csv", REVIEW_COLUMNS, result.queue)
    run.write_csv("study_links.csv", ["study_id", "cluster_id", "registration"],
                  sorted(result.study_links, key=lambda s: (s["study_id"], s["cluster_id"])))
    run.write_bytes("canonical.jsonl", canonical)
    run.write_text(INDEX, index_text(index))


def _merge_log(merges: Iterable[dict[str, Any]]) -> str:
    return csv_text(MERGE_LOG_COLUMNS, sorted(merges, key=_merge_order))


def _merge_order(merge: dict[str, Any]) -> tuple[str, str]:
    return (merge["record_a"], merge["record_b"])


def _extended_merge_log(since: Run, merges: list[dict[str, Any]]) -> bytes:
    """``since``'s merge log with ``merges`` put in at their places (its rows copied as
    bytes; read as CSV only when a field is quoted, which a line-wise splice cannot place)."""
    data = since.require("merge_log.csv", "dedupe").read_bytes()
    if b'"' in data:
        return _merge_log([*since.read_csv("merge_log.csv", "dedupe"), *merges]).encode("utf-8")
    body = data.find(b"\n") + 1
    new = {_MERGE_KEY.join(_merge_order(m)): csv_text(MERGE_LOG_COLUMNS, [m], header=False)
           .encode("utf-8").removesuffix(b"\n") for m in merges}
    return data[:body] + extended_lines(data[body:], new, set(), _merge_key)


# Between record_a and record_b in a merge log row's sort key: below any character of an id,
# so the joined keys sort as the (record_a, record_b) pairs do.
_MERGE_KEY = "\x00"


def _merge_key(line: bytes) -> str:
    a, b, _ = line.decode("utf-8").split(",", 2)
    return a + _MERGE_KEY + b


def _log_merges(store: Store, run: Run, merges: list[dict[str, Any]]) -> None:
    store.append_decisions(run.run_id, (
        {"subject": m["record_b"], "stage": "dedupe", "decision": "merge",
         "reason": m["rule"], "evidence": f"merged with {m['record_a']}",
         "actor": "reviewer" if m["rule"].startswith("reviewer") else RULES}
        for m in sorted(merges, key=lambda m: (m["record_a"], m["record_b"]))))


def _record(run: Run, result: Clustering, answers: int, info: dict[str, Any]) -> StageResult:
    n_records = len(result.cluster_of)
    clusters = set(result.cluster_of.values())
    counts: dict[str, Any] = {
        "records": n_records, "clusters": len(clusters),
        "duplicates_removed": n_records - len(clusters),
        "studies": len({result.study_of[c] for c in clusters}),
        "review_queue": len(result.queue), "reviewer_answers": answers}
    run.record_stage("dedupe", counts=counts, outputs=OUTPUTS, rules=RULES, **info)
    return StageResult("dedupe", counts, OUTPUTS)


def _write_extension(store: Store, run: Run, since: Run, extension: Extension,
                     answers: int) -> StageResult:
    """Write an update's dedupe artifacts: the previous run's, with what the new records
    changed."""
    result = extension.clustering
    by_cluster: dict[str, list[Record]] = defaultdict(list)
    for record in extension.records.values():
        by_cluster[result.cluster_of[record.record_id]].append(record)
    rebuilt = {cid: _canonical_line(cid, result.study_of[cid], members).encode("utf-8")
               for cid, members in by_cluster.items()}
    text = extended_lines(since.require("canonical.jsonl", "dedupe").read_bytes(), rebuilt,
                          extension.removed, canonical_line_id)
    _write(run, result, _extended_merge_log(since, result.merges), text, extension.index)
    rows = ((rid, cid, result.study_of[cid]) for rid, cid in sorted(result.cluster_of.items()))
    stored = store.db.execute("SELECT COUNT(*) FROM clusters WHERE run_id = ?",
                              (since.run_id,)).fetchone()[0]
    if stored == len(result.cluster_of) - len(extension.new):
        store.carry_rows("clusters", since.run_id, run.run_id, "record_id",
                         (row for row in rows if row[1] in extension.changed))
    else:  # the store lacks the previous run's rows (moved aside, say): write them all
        store.replace_rows("clusters", run.run_id, rows)
    _log_merges(store, run, result.merges)
    return _record(run, result, answers, {
        "carried_from": since.run_id, "new_records": len(extension.new),
        "clusters_changed": len(extension.changed), "clusters_merged": len(extension.removed),
        "canonical_reused": len(set(result.cluster_of.values())) - len(rebuilt),
        # Which canonical lines differ from the run before: screening need not compare them.
        "changed_clusters": sorted(extension.changed),
        "removed_clusters": sorted(extension.removed)})


def _canonical_lines(records: list[Record], result: Clustering,
                     reusable: dict[str, str] | None = None) -> list[str]:
    """canonical.jsonl's lines; a cluster in ``reusable`` keeps the line given there."""
    reusable = reusable or {}
    by_cluster: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_cluster[result.cluster_of[record.record_id]].append(record)
    return [reusable[cid] if cid in reusable
            else _canonical_line(cid, result.study_of[cid], by_cluster[cid])
            for cid in sorted(by_cluster)]


def _canonical_line(cluster_id: str, study_id: str, members: list[Record]) -> str:
    best, provenance = canonical(members)
    row = {"cluster_id": cluster_id, "study_id": study_id, "n_records": len(members),
           "record_ids": sorted(r.record_id for r in members), "provenance": provenance}
    return best_record_json(row, best)


def _reusable_canonical(run: Run, since: Run, result: Clustering) -> dict[str, str]:
    """``since``'s canonical lines of clusters that are unchanged in ``run``: same id, same
    records with the same content, same study. A canonical line is a function of just these,
    so it is reused as it is instead of being built again."""
    def lines_by(path: Path, key_of: Callable[[bytes], str | None]) -> dict[str, bytes]:
        with path.open("rb") as handle:
            return {key: line.rstrip(b"\n") for line in handle
                    if (key := key_of(line)) is not None}

    old_records = lines_by(since.require("records.jsonl", "search"), line_record_id)
    new_records = lines_by(run.require("records.jsonl", "search"), line_record_id)
    members: dict[str, set[str]] = defaultdict(set)
    for row in since.read_csv("clusters.csv", "dedupe"):
        members[row["cluster_id"]].add(row["record_id"])
    now: dict[str, set[str]] = defaultdict(set)
    for record_id, cluster_id in result.cluster_of.items():
        now[cluster_id].add(record_id)
    out = {}
    for cluster_id, line in lines_by(since.require("canonical.jsonl", "dedupe"),
                                     canonical_line_id).items():
        study = _STUDY_ID.search(line)
        # A record missing on either side is never "unchanged" (None == None).
        if (now.get(cluster_id) == members.get(cluster_id) and study
                and study.group(1).decode() == result.study_of.get(cluster_id)
                and all(r in old_records and old_records[r] == new_records.get(r)
                        for r in now[cluster_id])):
            out[cluster_id] = line.decode("utf-8")
    return out


def best_record_json(row: dict[str, Any], best: Record) -> str:
    """One line of canonical.jsonl: the canonical record plus its cluster and provenance."""
    data = json.loads(best.to_json())
    data.update(row)
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def load_canonical(run: Run, cluster_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One canonical record (as a dict with cluster_id, study_id…) per cluster, in cluster
    order.

    With ``cluster_ids``, only those clusters' lines are parsed; a few of them (the included
    studies of a large review) are found by binary search in the file, which is sorted by
    cluster id, so a few pages are read rather than the whole file.
    """
    path = run.require("canonical.jsonl", "dedupe")
    wanted = None if cluster_ids is None else set(cluster_ids)
    if wanted is not None and len(wanted) <= FEW:
        return [json.loads(line) for line in canonical_lines(run, wanted).values()]
    out = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if wanted is not None:
                # A key's quotes cannot occur unescaped inside a JSON string value.
                match = CANONICAL_CLUSTER_ID.search(line)
                if match is None or match.group(1) not in wanted:
                    continue
            out.append(json.loads(line))
    return out


def clusters_of_records(run: Run, record_ids: Iterable[str]) -> dict[str, str]:
    """``record_id -> cluster_id`` from ``clusters.csv`` for a few record ids (each found by a
    text search for its row, not by reading every row)."""
    wanted = set(record_ids)
    if not wanted:
        return {}
    data = run.require("clusters.csv", "dedupe").read_bytes()
    out = {}
    for record_id in sorted(wanted):
        start = data.find(b"\n" + csv_line(["record_id"], {"record_id": record_id}) + b",")
        if start >= 0:
            line = data[start + 1:data.index(b"\n", start + 1)]
            out[record_id] = parse_csv_line(["record_id", "cluster_id", "study_id"],
                                            line)["cluster_id"]
    return out


def canonical_lines(run: Run, cluster_ids: Iterable[str]) -> dict[str, bytes]:
    """The canonical.jsonl lines of a few clusters, in cluster order, each found by binary
    search in the mapped file (sorted by cluster id); a cluster it lacks is left out."""
    wanted = sorted(set(cluster_ids))
    path = run.require("canonical.jsonl", "dedupe")
    if not wanted or path.stat().st_size == 0:
        return {}
    out = {}
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0,
                                              access=mmap.ACCESS_READ) as data:
        for cluster_id in wanted:
            line = find_line(data, cluster_id, canonical_line_id)
            if line is not None:
                out[cluster_id] = line
    return out


def canonical_line_id(line: bytes) -> str | None:
    """The cluster id of a line of ``canonical.jsonl``."""
    match = _CANONICAL_ID.search(line)
    return match.group(1).decode() if match else None


def read_answers(path: Path) -> dict[frozenset[str], str]:
    """A reviewer's same/different verdicts on queued pairs (``queries/<id>.dedupe.csv``).

    Columns ``record_a, record_b, answer`` (plus optional ``reviewer, note, date``, and any
    column of ``dedupe_review.csv``, whose rows can be pasted in); answer is ``same`` or
    ``different``, and a row left blank is not answered yet. A later row on the same pair
    overrides an earlier one.

    Raises
    ------
    InputError
        A required column is missing, an answer is neither word, or a row names one record.
    """
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
            if not answer:
                continue
            if answer not in ("same", "different"):
                raise InputError(path, f"answer must be 'same' or 'different', got {answer!r}",
                                 line=line)
            a, b = (row["record_a"] or "").strip(), (row["record_b"] or "").strip()
            if not a or not b or a == b:
                raise InputError(path, "record_a and record_b must be two different record ids",
                                 line=line)
            answers[frozenset((a, b))] = answer
    return answers


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

    ``record_id`` is the input's own id (RIS ``ID``, PMID, or the CSV ``id``); ``file`` tells
    apart two files that use the same ids.
    """
    from reviewpipe.readers import read_records

    records: list[Record] = []
    for position, path in enumerate(paths):
        # The file's position keeps record ids apart when two files share a stem.
        records.extend(read_records(path, source=f"f{position}"))
    result = cluster_records(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["record_id", "cluster_id", "file"])
    for record in sorted(records, key=lambda r: (r.file, r.source_id)):
        writer.writerow([record.source_id, result.cluster_of[record.record_id], record.file])
    return buffer.getvalue()
