"""An update screens and reports at the cost of what changed, and its artifacts are still what
doing every stage from scratch gives, byte for byte, including rows of old clusters that the
new records or the reviewers' decisions change."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import PROJECT, REVIEW
from eutils_standin import EutilsStandin, make_article
from reviewpipe import update
from reviewpipe.cli import cli
from reviewpipe.protocol import load_protocol
from reviewpipe.report import report
from reviewpipe.runs import ReviewPaths, Run, open_run
from reviewpipe.screen import screen
from reviewpipe.store import Store

ENV = {"NCBI_EMAIL": "tests@example.org"}
TODAY = date(2026, 11, 28)
TITLE = ("Dry needling versus sham dry needling for plantar fasciitis: a randomised "
         "controlled trial")
# Every artifact screen and report write from the rows they carry.
SAME = ("screening.csv", "screen_memo.jsonl", "conflicts.csv", "agreement.json",
        "prisma.json", "report.html", "asreview.csv", "included.ris")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose review has run once (shared by the tests, which copy it)."""
    root = tmp_path_factory.mktemp("base") / "project"
    (root / "queries").mkdir(parents=True)
    shutil.copy(PROJECT / "queries" / f"{REVIEW}.toml", root / "queries")
    shutil.copytree(PROJECT / "data" / "snapshots" / REVIEW, root / "data" / "snapshots" / REVIEW)
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {r["cluster_id"]: r for r in csv.DictReader(handle)}


def _store_rows(root: Path, run_id: str) -> list[tuple]:
    with sqlite3.connect(root / "data" / "reviews" / REVIEW / "review.sqlite") as db:
        return db.execute("SELECT cluster_id, decision, reason, design, p_rct, decided_by, "
                          "evidence FROM screening WHERE run_id = ? ORDER BY cluster_id",
                          (run_id,)).fetchall()


def _decisions(root: Path, rows: list[list[str]]) -> None:
    with (root / "queries" / f"{REVIEW}.decisions.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "reviewer", "decision", "reason", "note", "date"],
                                      *rows])


def _twins(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
           updates: list[tuple[list[str], Callable[[Path], None]]]
           ) -> list[tuple[Path, Path, list[str]]]:
    """Two copies of ``base`` through the same updates (new articles, and a change to the
    project before each): one incremental, report included, the other redoing every stage.
    The last update's run of each, as (project, run folder, its updates' run ids). Both run
    in the same folder, since records hold the path of the raw file they were read from."""
    snapshot = (base / "data" / "snapshots" / REVIEW / "pubmed.xml").read_text()
    out = []
    for name, stages in (("incremental", (*update.INCREMENTAL_STAGES, "report")),
                         ("scratch", ())):
        root = tmp_path / "project"
        shutil.copytree(base, root, symlinks=True)
        monkeypatch.setattr(update, "INCREMENTAL_STAGES", stages)
        articles: list[str] = []
        run_ids = []
        for number, (new, change) in enumerate(updates):
            articles += new
            change(root)
            with EutilsStandin(articles=snapshot) as standin:
                standin.add_articles(articles)
                result = update.update_review(
                    root, REVIEW, environ={**ENV, "REVIEWPIPE_EUTILS_URL": standin.base_url},
                    today=TODAY.replace(day=TODAY.day - len(updates) + 1 + number), backoff=0)
            assert result.run is not None
            run_ids.append(result.run.run_id)
        root.rename(tmp_path / name)
        out.append((tmp_path / name, tmp_path / name / result.run.dir.relative_to(root),
                    run_ids))
    return out


def _assert_same(twins: list[tuple[Path, Path, list[str]]]) -> None:
    (root, folder, run_ids), (scratch_root, scratch, scratch_ids) = twins
    stages = json.loads((folder / "manifest.json").read_text())["stages"]
    assert "changed_clusters" in stages["screen"]  # screened from the previous run's rows
    assert stages["report"]["carried_from"]  # ... and reported from its lines
    for name in SAME:
        assert _bytes(folder / name, run_ids) == _bytes(scratch / name, scratch_ids), name
    assert _store_rows(root, folder.name) == _store_rows(scratch_root, scratch.name)


def _bytes(path: Path, run_ids: list[str]) -> bytes:
    """A file's bytes; in the report, what differs between the twins' runs made the same:
    when PubMed was searched, and the ids of the update runs (the previous run's, in the
    changes section)."""
    data = path.read_bytes()
    if path.name != "report.html":
        return data
    for number, run_id in enumerate(run_ids):
        data = data.replace(run_id.encode(), f"update {number}".encode())
    return re.sub(rb"<td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</td>", b"<td>searched</td>", data)


def test_update_linking_an_old_study_gives_what_a_full_run_gives(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latest = base / "data" / "reviews" / REVIEW / "latest"
    before = _rows(latest / "screening.csv")
    # The secondary analysis of a registered trial whose main report the review lacks; a new
    # report of that trial (same registration) becomes its main report.
    secondary = next(r for r in before.values() if r["design"] == "secondary_analysis"
                     and r["reason"] == "duplicate_report")
    registration = next(
        json.loads(line)["registrations"][0]
        for line in (latest / "canonical.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["cluster_id"] == secondary["cluster_id"])
    trial = make_article("99000011", edat=date(2026, 11, 20), title=TITLE).replace(
        "We randomised", f"Registered as {registration}. We randomised")
    twins = _twins(base, tmp_path, monkeypatch, [([trial], lambda root: None)])
    _assert_same(twins)

    after = _rows(twins[0][1] / "screening.csv")
    assert after[secondary["cluster_id"]] != secondary  # an old row changed ...
    new = set(after) - set(before)
    assert after[secondary["cluster_id"]]["report_of"] in new  # ... through the new report
    assert json.loads((twins[0][1] / "manifest.json").read_text())["stages"]["screen"][
        "changed_clusters"] == sorted(new)  # ... whose cluster alone was decided


def test_reviewer_decisions_on_old_clusters_give_what_a_full_run_gives(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latest = base / "data" / "reviews" / REVIEW / "latest"
    before = _rows(latest / "screening.csv")
    # Excluded rows study links leave alone: only the decisions change them.
    excluded = sorted(c for c, r in before.items() if r["decision"] == "exclude"
                      and r["design"] not in ("secondary_analysis", "conference_abstract"))
    included = sorted(c for c, r in before.items() if r["decision"] == "include")
    with (latest / "clusters.csv").open(encoding="utf-8", newline="") as handle:
        record_of = {r["cluster_id"]: r["record_id"] for r in csv.DictReader(handle)}
    first = [[excluded[0], "ana", "include", "none", "a trial after all", "2026-11-01"],
             [included[0], "ana", "exclude", "wrong_design", "", "2026-11-01"]]
    second = [  # the first decision withdrawn, the second kept, three more
        [included[0], "ana", "exclude", "wrong_design", "", "2026-11-01"],
        [excluded[1], "ana", "include", "none", "", "2026-11-20"],
        [record_of[excluded[2]], "ana", "uncertain", "none", "by record id", "2026-11-20"],
        [excluded[3], "ana", "include", "none", "", "2026-11-20"],
        [excluded[3], "ben", "exclude", "wrong_population", "", "2026-11-20"]]
    twins = _twins(base, tmp_path, monkeypatch, [
        ([make_article("99000021", edat=date(2026, 11, 20), title=TITLE)],
         lambda root: _decisions(root, first)),
        ([make_article("99000022", edat=date(2026, 11, 26))],
         lambda root: _decisions(root, second))])
    _assert_same(twins)

    after = _rows(twins[0][1] / "screening.csv")
    assert after[excluded[0]] == before[excluded[0]]  # back to the machine's verdict
    assert after[included[0]]["decided_by"] == "human:ana"
    assert after[excluded[1]]["decision"] == "include"
    assert after[excluded[2]]["decision"] == "uncertain"
    assert after[excluded[3]]["decided_by"] == "conflict"


def test_clusters_merged_away_drop_out(base: Path, tmp_path: Path) -> None:
    """A previous run's clusters that a run no longer has (merged into others) leave its
    screening, store rows, report and exports, as when screening and reporting from scratch.
    """
    root = tmp_path / "project"
    shutil.copytree(base, root, symlinks=True)
    paths = ReviewPaths(root, REVIEW)
    protocol = load_protocol(root / "queries" / f"{REVIEW}.toml")
    since = open_run(paths)
    screening = _rows(since.dir / "screening.csv")
    lines = {json.loads(line)["cluster_id"]: json.loads(line) for line in
             (since.dir / "canonical.jsonl").read_text(encoding="utf-8").splitlines()}
    # An included cluster merged into another included one (whose record gains a trial
    # registration, so its RIS entry changes too), and an excluded one into the next cluster.
    ids = sorted(lines)
    included = [c for c in ids if screening[c]["decision"] == "include"]
    excluded = next(c for c in ids if screening[c]["decision"] == "exclude")
    into = {included[0]: included[1], excluded: ids[ids.index(excluded) + 1]}
    gone = list(into)
    runs = []
    for name in ("r2-carried", "r2-scratch"):
        run = Run(run_id=f"{since.run_id}-{name}", dir=paths.runs_dir / f"{since.run_id}-{name}",
                  manifest={"review": REVIEW, "stages": {
                      s: since.manifest["stages"][s] for s in ("search", "dedupe")}})
        run.dir.mkdir()
        for artifact in ("records.csv", "records.jsonl", "search.json"):
            shutil.copy(since.dir / artifact, run.dir / artifact)
        merged = dict(lines)
        for old, new in into.items():
            kept = dict(merged[new])
            kept["record_ids"] = sorted(kept["record_ids"] + merged.pop(old)["record_ids"])
            kept["n_records"] = len(kept["record_ids"])
            kept["registrations"] = sorted({*kept.get("registrations", []), "ISRCTN12345678"})
            merged[new] = kept
        (run.dir / "canonical.jsonl").write_text("".join(
            json.dumps(merged[c], ensure_ascii=False, sort_keys=True) + "\n"
            for c in sorted(merged)), encoding="utf-8")
        with (since.dir / "clusters.csv").open(encoding="utf-8", newline="") as handle:
            clusters = list(csv.DictReader(handle))
        with (run.dir / "clusters.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, ["record_id", "cluster_id", "study_id"],
                                    lineterminator="\n")
            writer.writeheader()
            for row in clusters:
                cluster = into.get(row["cluster_id"], row["cluster_id"])
                writer.writerow({**row, "cluster_id": cluster,
                                 "study_id": merged[cluster]["study_id"]})
        runs.append(run)
    carried, scratch = runs
    with Store.open(paths.store) as store:
        screen(protocol, store, carried, since=since)
        screen(protocol, store, scratch)
        report(protocol, store, carried, since=since)
        report(protocol, store, scratch)
    assert carried.manifest["stages"]["screen"]["changed_clusters"] == sorted(into.values())
    assert carried.manifest["stages"]["report"]["carried_from"] == since.run_id
    for name in SAME:
        assert (carried.dir / name).read_bytes() == (scratch.dir / name).read_bytes(), name
    assert not set(gone) & set(_rows(carried.dir / "screening.csv"))
    assert _store_rows(root, carried.run_id) == _store_rows(root, scratch.run_id)
