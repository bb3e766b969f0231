"""Dedupe in an update: new records matched against the previous run's clusters.

The bundled review's records are split into what an earlier run had and what arrives later
(a whole database's export, or single records); the update's clusters are compared with
clustering every record from scratch, on the real cross-database duplicates of the snapshot.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import PROJECT, REVIEW
from reviewpipe.dedupe import dedupe
from reviewpipe.pipeline import run_review
from reviewpipe.protocol import Protocol, load_protocol
from reviewpipe.records import Record
from reviewpipe.runs import ReviewPaths, Run, open_run
from reviewpipe.search import load_records, write_search
from reviewpipe.store import Store


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Protocol, list[Record]]:
    """The protocol and every record of the bundled review, searched once."""
    import shutil



    root = tmp_path_factory.mktemp("bundled")
    (root / "queries").mkdir()
    shutil.copy(PROJECT / "queries" / f"{REVIEW}.toml", root / "queries")
    shutil.copytree(PROJECT / "data" / "snapshots" / REVIEW,
                    root / "data" / "snapshots" / REVIEW)
    run_review(root, REVIEW)
    protocol = load_protocol(root / "queries" / f"{REVIEW}.toml")
    return protocol, load_records(open_run(ReviewPaths(root, REVIEW)))


def _run(store: Store, folder: Path, name: str, records: list[Record]) -> Run:
    run = Run(run_id=name, dir=folder / name, manifest={"review": REVIEW})
    run.dir.mkdir(parents=True)
    store.start_run(name, "test", False)
    write_search(store, run, REVIEW, records, [], live=False)
    return run


def _members(run: Run) -> dict[str, frozenset[str]]:
    by_cluster: dict[str, set[str]] = {}
    with run.path("clusters.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            by_cluster.setdefault(row["cluster_id"], set()).add(row["record_id"])
    return {cid: frozenset(ids) for cid, ids in by_cluster.items()}


def _update_and_full(protocol: Protocol, tmp_path: Path, old: list[Record],
                     new: list[Record]) -> tuple[Run, Run, Run]:
    """An earlier run of ``old``; an update adding ``new``; all of them clustered afresh."""
    store = Store.open(tmp_path / "review.sqlite")
    previous = _run(store, tmp_path, "1-previous", old)
    dedupe(protocol, store, previous)
    store.finish_run(previous.run_id, "complete")
    update = _run(store, tmp_path, "2-update", old + new)
    dedupe(protocol, store, update, since=previous)
    full = _run(store, tmp_path, "3-full", old + new)
    dedupe(protocol, store, full)
    store.close()
    return previous, update, full


def test_a_whole_database_added_later_clusters_as_a_full_run(
        bundled: tuple[Protocol, list[Record]], tmp_path: Path) -> None:
    protocol, records = bundled
    sources = sorted({r.source for r in records})
    assert len(sources) >= 3, sources
    late = next(s for s in sources if s != "pubmed")
    old = [r for r in records if r.source != late]
    new = [r for r in records if r.source == late]
    previous, update, full = _update_and_full(protocol, tmp_path, old, new)

    info = update.manifest["stages"]["dedupe"]
    assert info["new_records"] == len(new) > 10
    assert info["carried_from"] == previous.run_id
    # Many of the export's records are copies of PubMed's: they joined old clusters.
    joined = {cid for cid, ids in _members(update).items()
              if any(r.record_id in ids for r in new) and any(r.record_id in ids for r in old)}
    assert len(joined) > 5
    assert _members(update) == _members(full)
    for name in ("clusters.csv", "canonical.jsonl", "study_links.csv", "dedupe_review.csv",
                 "dedupe_index.json"):
        assert update.path(name).read_bytes() == full.path(name).read_bytes(), name
    # The merge log keeps the earlier run's rows and adds the merges made now.
    logged = update.path("merge_log.csv").read_text(encoding="utf-8").splitlines()
    assert set(previous.path("merge_log.csv").read_text(encoding="utf-8").splitlines()) <= \
        set(logged)


def test_old_clusters_keep_their_ids_and_rows(bundled: tuple[Protocol, list[Record]],
                                              tmp_path: Path) -> None:
    protocol, records = bundled
    pubmed = [r for r in records if r.source == "pubmed"]
    old, new = pubmed[:-3], pubmed[-3:]
    previous, update, _ = _update_and_full(protocol, tmp_path, old, new)
    before = {row for row in previous.path("clusters.csv").read_text().splitlines()}
    after = {row for row in update.path("clusters.csv").read_text().splitlines()}
    assert before <= after and len(after - before) == 3
    info = update.manifest["stages"]["dedupe"]
    assert info["canonical_reused"] == info["counts"]["clusters"] - info["clusters_changed"]


def test_a_new_record_that_matches_two_clusters_joins_them(
        bundled: tuple[Protocol, list[Record]], tmp_path: Path) -> None:
    """Two copies of one paper kept apart (no shared key) until a third copy, with both
    their keys, arrives: the clusters merge and the smaller id stays."""
    protocol, records = bundled
    paper = next(r for r in records if r.source == "pubmed" and r.doi and r.pmid and r.title)
    rest = [r for r in records if r.record_id != paper.record_id and r.pmid != paper.pmid
            and r.doi != paper.doi]
    only_pmid = Record(**{**paper.__dict__, "record_id": "a:1", "source": "a",
                          "source_id": "1", "doi": None, "title": "x " * 3,
                          "abstract": "", "authors": []})
    only_doi = Record(**{**paper.__dict__, "record_id": "b:1", "source": "b", "source_id": "1",
                         "pmid": None, "title": "y " * 3, "abstract": "", "authors": []})
    both = Record(**{**paper.__dict__, "record_id": "c:1", "source": "c", "source_id": "1"})
    previous, update, full = _update_and_full(protocol, tmp_path, rest + [only_pmid, only_doi],
                                              [both])
    old = _members(previous)
    apart = {cid for cid, ids in old.items() if ids & {"a:1", "b:1"}}
    assert len(apart) == 2
    merged = _members(update)
    joined = next(cid for cid, ids in merged.items() if "c:1" in ids)
    assert {"a:1", "b:1"} <= merged[joined]
    # Every old cluster the new record joined is one now, under the smallest of their ids.
    olds = {cid for cid, ids in old.items() if ids & merged[joined]}
    assert apart <= olds and joined == min(olds)
    assert not (olds - {joined}) & merged.keys()
    assert update.manifest["stages"]["dedupe"]["clusters_merged"] == len(olds) - 1
    canonical = [json.loads(line)["cluster_id"] for line in
                 update.path("canonical.jsonl").read_text(encoding="utf-8").splitlines()]
    assert joined in canonical and not (olds - {joined}) & set(canonical)
    assert merged == _members(full)


def test_changed_answers_or_records_cluster_everything_again(
        bundled: tuple[Protocol, list[Record]], tmp_path: Path) -> None:
    protocol, records = bundled
    old, new = records[:-2], records[-2:]
    store = Store.open(tmp_path / "review.sqlite")
    previous = _run(store, tmp_path, "1", old)
    dedupe(protocol, store, previous)
    store.finish_run("1", "complete")
    # One old record edited since: the index cannot stand for it, so every record is redone.
    edited = [Record(**{**old[0].__dict__, "title": old[0].title + " (corrected)"}), *old[1:]]
    again = _run(store, tmp_path, "2", edited + new)
    dedupe(protocol, store, again, since=previous)
    assert "new_records" not in again.manifest["stages"]["dedupe"]
    # A reviewer's answer since the last run: the same.
    answers = protocol.path.with_name(f"{REVIEW}.dedupe.csv")
    answers.write_text(f"record_a,record_b,answer\n{old[0].record_id},{old[1].record_id},"
                       "different\n", encoding="utf-8")
    try:
        third = _run(store, tmp_path, "3", old + new)
        dedupe(protocol, store, third, since=previous)
        assert "new_records" not in third.manifest["stages"]["dedupe"]
    finally:
        answers.unlink()
    store.close()



def test_extended_lines_splices_sorted_lines() -> None:
    from reviewpipe.dedupe_update import extended_lines

    def key(line: bytes) -> str:
        return line.split(b" ")[0].decode()

    previous = b"b 1\nd 1\nf 1\n"
    replaced = {"a": b"a 2", "d": b"d 2", "e": b"e 2", "z": b"z 2"}
    assert extended_lines(previous, replaced, {"f"}, key) == b"a 2\nb 1\nd 2\ne 2\nz 2\n"
    assert extended_lines(previous, {}, set(), key) == previous
    assert extended_lines(b"", {"a": b"a 1"}, {"q"}, key) == b"a 1\n"
