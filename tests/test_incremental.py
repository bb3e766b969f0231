"""Update runs screen and extract only the clusters new records changed, carry the rest forward,
and give the same artifacts as doing it all again."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner

from conftest import REVIEW
from eutils_standin import EutilsStandin, make_article
from reviewpipe.cli import cli
from reviewpipe.memo import read_memo, stage_key, write_memo
from reviewpipe.pipeline import stage_functions
from reviewpipe.protocol import load_protocol
from reviewpipe.runs import Run
from reviewpipe.store import Store

NEW_TRIAL = "99000001"
NEW_COPY = "99000002"  # PubMed's record of a publication the review has only from an export
TITLE = ("Dry needling versus sham dry needling for plantar fasciitis: a randomised "
         "controlled trial")
COMPARED = ("clusters.csv", "canonical.jsonl", "merge_log.csv", "dedupe_review.csv",
            "study_links.csv", "dedupe_index.json", "screening.csv", "studies.csv", "outcomes.csv",
            "adverse_events.csv", "effects.csv")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env)


def _env(standin: EutilsStandin) -> dict[str, str]:
    return {"NCBI_EMAIL": "tests@example.org", "REVIEWPIPE_EUTILS_URL": standin.base_url}


def _export_only_publication(folder: Path) -> dict:
    """A cluster the review has from an export only (no PMID), with a DOI and a long title."""
    for line in (folder / "canonical.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if not record.get("pmid") and record.get("doi") and len(record.get("title") or "") > 60:
            return record
    raise AssertionError("the snapshot has no export-only publication with a DOI")


def _pubmed_copy(record: dict) -> str:
    article = make_article(NEW_COPY, edat=date(2026, 11, 21), title=record["title"])
    return article.replace(f"10.5555/synth.{NEW_COPY}", escape(record["doi"]))


def _update(project: Path, articles: list[str]) -> Path:
    snapshot = (project / "data" / "snapshots" / REVIEW / "pubmed.xml").read_text()
    with EutilsStandin(articles=snapshot) as standin:
        standin.add_articles(articles)
        result = _invoke(["update", "--review", REVIEW, "--root", str(project),
                          "--today", "2026-11-28"], _env(standin))
    assert result.exit_code == 3, result.output
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def reviewed(project: Path) -> Path:
    result = _invoke(["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def _from_scratch(project: Path, update: Path, tmp_path: Path) -> Path:
    """The update run's records through every later stage again, with nothing carried."""
    protocol = load_protocol(project / "queries" / f"{REVIEW}.toml")
    review_dir = project / "data" / "reviews" / REVIEW
    scratch = tmp_path / "scratch"
    shutil.copytree(review_dir, scratch / "review", ignore=shutil.ignore_patterns("runs"))
    run = Run(run_id="scratch", dir=scratch / "run", manifest={"review": REVIEW})
    run.dir.mkdir()
    for name in ("records.jsonl", "records.csv", "search.json"):
        shutil.copy(update / name, run.dir / name)
    run.manifest["stages"] = {"search": json.loads(
        (update / "manifest.json").read_text())["stages"]["search"]}
    # A copy of the store without the update run's clusters, so ids come from the run before.
    with sqlite3.connect(scratch / "review" / "review.sqlite") as db:
        db.execute("DELETE FROM clusters WHERE run_id = ?", (update.name,))
    with Store.open(scratch / "review" / "review.sqlite") as store:
        for name, function in stage_functions().items():
            if name not in ("search", "report"):
                function(protocol, store, run)
    return run.dir


def test_update_adds_new_records_without_redoing_the_review(project: Path, reviewed: Path,
                                                             tmp_path: Path) -> None:
    copied = _export_only_publication(reviewed)
    before = {r["cluster_id"]: r for r in _rows(reviewed / "screening.csv")}
    folder = _update(project, [make_article(NEW_TRIAL, edat=date(2026, 11, 20), title=TITLE),
                               _pubmed_copy(copied)])
    stages = json.loads((folder / "manifest.json").read_text())["stages"]

    clusters = {r["record_id"]: r["cluster_id"] for r in _rows(folder / "clusters.csv")}
    copy_id = next(rid for rid in clusters if rid.endswith(NEW_COPY))
    assert clusters[copy_id] == copied["cluster_id"]  # joined the old cluster, id kept
    trial_cluster = clusters[next(rid for rid in clusters if rid.endswith(NEW_TRIAL))]
    assert trial_cluster not in before

    # Dedupe matched the two new records only, against the old clusters' index, and rebuilt
    # the canonical records of those two clusters only ...
    assert stages["dedupe"]["new_records"] == 2
    assert stages["dedupe"]["clusters_changed"] == 2
    assert stages["dedupe"]["canonical_reused"] == stages["dedupe"]["counts"]["clusters"] - 2
    # ... screening decided them, and carried the rest.
    screen = stages["screen"]["counts"]
    assert screen["decided_now"] == 2
    assert screen["screened"] == len(before) + 1
    after = {r["cluster_id"]: r for r in _rows(folder / "screening.csv")}
    unchanged = set(before) - {copied["cluster_id"]}
    assert all(after[c] == before[c] for c in unchanged)
    assert stages["extract"]["counts"]["extracted_now"] <= 1  # at most the new trial

    # ... and every artifact is what clustering, screening and extracting it all gives.
    again = _from_scratch(project, folder, tmp_path)
    for name in COMPARED:
        assert (folder / name).read_bytes() == (again / name).read_bytes(), name

    # The decision log grows with what the update decided, not with the review.
    log = [json.loads(line) for line in
           (folder / "decisions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {e["subject"] for e in log if e["stage"] == "screen"} == {
        copied["cluster_id"], trial_cluster}
    assert [e["subject"] for e in log if e["stage"] == "dedupe"] == [copy_id]
    # ... and explaining a carried cluster shows the entry of the run that decided it.
    old_cluster = sorted(unchanged)[0]
    explained = _invoke(["audit", "explain", "--review", REVIEW, "--root", str(project),
                         old_cluster])
    assert explained.exit_code == 0, explained.output
    screen_entries = [e for e in json.loads(explained.stdout)["decision_log"]
                      if e["stage"] == "screen"]
    assert [e["run_id"] for e in screen_entries] == [reviewed.name]
    assert screen_entries[0]["decision"] == before[old_cluster]["decision"]

    assert _invoke(["audit", "verify", "--review", REVIEW, "--root", str(project)]
                   ).exit_code == 0


def test_a_stage_rerun_on_a_finished_run_still_verifies(project: Path, reviewed: Path) -> None:
    assert _invoke(["screen", "--review", REVIEW, "--root", str(project)]).exit_code == 0
    result = _invoke(["audit", "verify", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output


def test_memo_is_ignored_when_code_or_protocol_changes(project: Path, tmp_path: Path) -> None:
    protocol = load_protocol(project / "queries" / f"{REVIEW}.toml")
    run = Run(run_id="r", dir=tmp_path, manifest={})
    key = stage_key(protocol, ("screen",))
    write_memo(run, "m.jsonl", key, [("C2", "h2", {"x": 2}), ("C1", "h1", {"x": 1})])
    assert read_memo(run, "m.jsonl", key) == {"C1": ("h1", {"x": 1}), "C2": ("h2", {"x": 2})}
    assert (tmp_path / "m.jsonl").read_text().splitlines()[1].startswith('{"id": "C1"')
    assert read_memo(run, "m.jsonl", stage_key(protocol, ("screen", "design"))) == {}
    protocol.data["screen"] = {**protocol.data["screen"], "include_from": 0.95}
    assert read_memo(run, "m.jsonl", stage_key(protocol, ("screen",))) == {}
    assert read_memo(None, "m.jsonl", key) == {}
    assert read_memo(run, "absent.jsonl", key) == {}


def test_audit_replays_an_update_on_the_run_before(project: Path, reviewed: Path) -> None:
    """An update run whose clusters were forged (hashes and all) fails `audit verify`: the
    update is replayed on the run it built on, not re-derived as if it were a full run."""
    import hashlib

    folder = _update(project, [make_article(NEW_TRIAL, edat=date(2026, 11, 20), title=TITLE)])
    rows = _rows(folder / "clusters.csv")
    new = next(r for r in rows if r["record_id"].endswith(NEW_TRIAL))
    other = next(r for r in rows if r["cluster_id"] != new["cluster_id"])
    new["cluster_id"], new["study_id"] = other["cluster_id"], other["study_id"]
    with (folder / "clusters.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["artifacts"]["clusters.csv"] = hashlib.sha256(
        (folder / "clusters.csv").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    result = _invoke(["audit", "verify", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 1, result.output
    assert f"{folder.name}: cluster {other['cluster_id']}" in result.output
    assert reviewed.name not in result.output  # the run before is still clean
