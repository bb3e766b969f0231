"""An update's search stage splices the new records into the previous run's artifacts: the
bytes and store rows must be what writing every record again gives."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REVIEW
from eutils_standin import EutilsStandin, make_article
from reviewpipe import search
from reviewpipe.cli import cli
from reviewpipe.errors import InputError
from reviewpipe.records import Record
from reviewpipe.runs import ReviewPaths, Run, open_run
from reviewpipe.search import (
    extend_search,
    load_records,
    record_sources,
    search_sources,
    write_search,
)
from reviewpipe.store import Store

ARTIFACTS = ("records.csv", "records.jsonl", "search.json")
AWKWARD_TITLE = 'Needling, "dry" or wet:\na trial\r\nin two lines'


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env)


@pytest.fixture
def reviewed(project: Path) -> Run:
    result = _invoke(["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    return open_run(ReviewPaths(project, REVIEW))


@pytest.fixture
def store(project: Path, reviewed: Run):
    with Store.open(ReviewPaths(project, REVIEW).store) as opened:
        yield opened


def _run(tmp_path: Path, name: str) -> Run:
    run = Run(run_id=name, dir=tmp_path / name, manifest={"review": REVIEW})
    run.dir.mkdir()
    return run


def _record(record_id: str, title: str = "A new trial", pmid: str | None = None) -> Record:
    source, source_id = record_id.split(":", 1)
    return Record(record_id=record_id, source=source, source_id=source_id, database="PubMed",
                  file="raw/update.xml", pmid=pmid, title=title,
                  abstract="Background, methods; \"results\".\nConclusion: é ≥ 5 %.",
                  abstract_sections=[["BACKGROUND", "b"], ["METHODS", "m,\"q\""]],
                  authors=["Smith J", "Núñez A"], year=2026, mesh=["Fasciitis, Plantar"],
                  entrez_date="2026/11/20", raw_index=3)


def _new_records(previous: Run) -> list[Record]:
    """A record that sorts first, one that sorts last, and one in the middle with an awkward
    title (comma, quotes, line breaks)."""
    ids = sorted(r.record_id for r in load_records(previous))
    first, last = "0-first:1", "~last:1"
    middle = ids[len(ids) // 2] + "0"
    assert first < ids[0] and ids[-1] < last
    assert ids[len(ids) // 2] < middle < ids[len(ids) // 2 + 1]
    return [_record(last, pmid="99000003"), _record(middle, AWKWARD_TITLE, "99000002"),
            _record(first, pmid="99000001")]


def _sources(previous: Run, count: int) -> list[dict]:
    return [*(s for s in search_sources(previous) if s["source"] != "pubmed-update"),
            {"source": "pubmed-update", "database": "PubMed", "count": count,
             "query": "plantar fasciitis", "mode": "live"}]


def _rows(store: Store, run_id: str) -> dict[str, list[tuple]]:
    return {table: store.db.execute(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY 2",
                                    (run_id,)).fetchall()
            for table in ("records", "searches")}


def _assert_same(store: Store, spliced: Run, whole: Run) -> None:
    for name in ARTIFACTS:
        assert spliced.path(name).read_bytes() == whole.path(name).read_bytes(), name
    ours, theirs = _rows(store, spliced.run_id), _rows(store, whole.run_id)
    assert len(ours["records"]) == len(theirs["records"]) > 0
    for table in ours:
        assert [r[1:] for r in ours[table]] == [r[1:] for r in theirs[table]], table
    for key in ("search", "artifacts"):
        assert spliced.manifest[key] == whole.manifest[key]
    stages = [{**run.manifest["stages"]["search"], "finished_at": None}
              for run in (spliced, whole)]
    # The spliced run also says which records it added to which run (dedupe reads that).
    added = {k: stages[0].pop(k) for k in ("carried_from", "new_records") if k in stages[0]}
    assert stages[0] == stages[1]
    if added:
        assert added["new_records"] == sorted(added["new_records"])


def _refused(run: Run) -> list[Record]:
    raise AssertionError("extend_search parsed every previous record")


def _both(store: Store, tmp_path: Path, previous: Run, new: list[Record],
          monkeypatch: pytest.MonkeyPatch, *, parsed: bool = False) -> tuple[Run, Run]:
    """``extend_search`` (refused a full parse unless ``parsed``) and ``write_search``."""
    sources = _sources(previous, len(new))
    spliced, whole = _run(tmp_path, "spliced"), _run(tmp_path, "whole")
    with monkeypatch.context() as patch:
        if not parsed:
            patch.setattr(search, "load_records", _refused)
        extend_search(store, spliced, REVIEW, previous, new, sources, live=True)
    write_search(store, whole, REVIEW, load_records(previous) + new, sources,
                 live=True)
    return spliced, whole


def test_spliced_search_is_writing_every_record_again(store: Store, reviewed: Run,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    new = _new_records(reviewed)
    probed: list[bytes] = []
    line_id = search._line_id

    def counted(line: bytes) -> str:
        probed.append(line)
        return line_id(line)

    with monkeypatch.context() as patch:
        patch.setattr(search, "_line_id", counted)
        spliced, whole = _both(store, tmp_path, reviewed, new, monkeypatch)
    n = len(load_records(reviewed))
    assert 0 < len(probed) <= len(new) * (2 + n.bit_length())  # a binary search per record
    _assert_same(store, spliced, whole)
    records = load_records(spliced)
    assert [r.record_id for r in records] == sorted(r.record_id for r in records)
    assert next(r for r in records if r.pmid == "99000002").title == AWKWARD_TITLE


def test_rows_with_line_breaks_before_and_after(store: Store, reviewed: Run, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A previous run whose records.csv has fields spanning lines: rows are not lines.
    broken = _run(tmp_path, "broken")
    old = [*load_records(reviewed), _record("pubmed:88000001", "Two\nlines, \"one\" row",
                                            "88000001")]
    write_search(store, broken, REVIEW, old, _sources(reviewed, 1), live=False)
    text = broken.path("records.csv").read_bytes()
    assert text.count(b"\n") > len(old) + 1
    spliced, whole = _both(store, tmp_path, broken, _new_records(broken), monkeypatch)
    _assert_same(store, spliced, whole)


def test_nothing_new_copies_the_previous_run(store: Store, reviewed: Run, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spliced, whole = _both(store, tmp_path, reviewed, [], monkeypatch)
    _assert_same(store, spliced, whole)
    assert spliced.path("records.jsonl").read_bytes() == reviewed.path(
        "records.jsonl").read_bytes()


def test_a_store_without_the_previous_rows_writes_everything(
        reviewed: Run, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The store moved aside (a fresh one): the rows cannot be copied, so all are written.
    with Store.open(tmp_path / "fresh" / "review.sqlite") as fresh:
        assert record_sources(fresh, reviewed) == [(r.source, r.pmid)
                                                   for r in load_records(reviewed)]
        spliced, whole = _both(fresh, tmp_path, reviewed, _new_records(reviewed), monkeypatch,
                               parsed=True)
        _assert_same(fresh, spliced, whole)
    assert sorted(record_sources(store, reviewed), key=str) == sorted(
        ((r.source, r.pmid) for r in load_records(reviewed)), key=str)


@pytest.mark.parametrize("clash", ["previous", "new"])
def test_a_duplicate_record_id_is_refused_like_writing_all(store: Store, reviewed: Run,
                                                           tmp_path: Path, clash: str) -> None:
    new = _new_records(reviewed)
    taken = load_records(reviewed)[len(new)].record_id if clash == "previous" else \
        new[1].record_id
    new.append(_record(taken, "A second record with that id"))
    spliced, whole = _run(tmp_path, "spliced"), _run(tmp_path, "whole")
    with pytest.raises(InputError) as ours:
        extend_search(store, spliced, REVIEW, reviewed, new, _sources(reviewed, 4), live=True)
    with pytest.raises(InputError) as theirs:
        write_search(store, whole, REVIEW, load_records(reviewed) + new,
                     _sources(reviewed, 4), live=True)
    assert str(ours.value) == str(theirs.value)
    assert taken in str(ours.value)
    assert not spliced.path("records.csv").exists()
    assert _rows(store, spliced.run_id)["records"] == []


def _update(project: Path, standin: EutilsStandin, today: str) -> Run:
    env = {"NCBI_EMAIL": "tests@example.org", "REVIEWPIPE_EUTILS_URL": standin.base_url}
    result = _invoke(["update", "--review", REVIEW, "--root", str(project), "--today", today],
                     env)
    assert result.exit_code in (0, 3), result.output
    return open_run(ReviewPaths(project, REVIEW))


def test_second_update_keeps_the_first_ones_records(project: Path, reviewed: Run,
                                                    tmp_path: Path) -> None:
    snapshot = (project / "data" / "snapshots" / REVIEW / "pubmed.xml").read_text()
    with EutilsStandin(articles=snapshot) as standin:
        standin.add_articles([make_article("99000001", edat=date(2026, 11, 20))])
        first = _update(project, standin, "2026-11-28")
        standin.add_articles([make_article("99000005", edat=date(2026, 12, 5))])
        second = _update(project, standin, "2026-12-10")
    assert second.run_id != first.run_id != reviewed.run_id
    update = second.manifest["search"][-1]
    assert (update["source"], update["count"], update["earlier_updates"]) == (
        "pubmed-update", 2, 1)
    assert [s["source"] for s in second.manifest["search"][:-1]] == [
        s["source"] for s in reviewed.manifest["search"]]
    records = load_records(second)
    assert len(records) == len(load_records(reviewed)) + 2
    assert {r.pmid for r in records if r.source == "pubmed-update"} == {"99000001", "99000005"}

    # What writing every record of the second update again gives.
    with Store.open(ReviewPaths(project, REVIEW).store) as store:
        whole = _run(tmp_path, "whole")
        write_search(store, whole, REVIEW, records, search_sources(second), live=True)
        for name in ARTIFACTS:
            assert second.path(name).read_bytes() == whole.path(name).read_bytes(), name
        ours, theirs = _rows(store, second.run_id), _rows(store, whole.run_id)
        for table in ours:
            assert [r[1:] for r in ours[table]] == [r[1:] for r in theirs[table]], table

    # The PMID lists are in search.json only: the manifest, saved at every stage, stays small.
    manifest = json.loads(second.path("manifest.json").read_text(encoding="utf-8"))
    full = json.loads(second.path("search.json").read_text(encoding="utf-8"))["sources"]
    assert any(s.get("pmids") for s in full)
    assert not any("pmids" in s for s in manifest["search"])
    assert not any("pmids" in f for s in manifest["search"] for f in s.get("raw_files", []))
