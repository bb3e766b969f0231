"""A full ``reviewpipe run`` on the bundled snapshot, through the real CLI, into a temp root."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REVIEW
from reviewpipe.cli import cli

ARTIFACTS = ["records.csv", "clusters.csv", "screening.csv", "outcomes.csv", "effects.csv",
             "prisma.json", "report.html", "manifest.json", "studies.csv", "search.json"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def finished(project: Path) -> Path:
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.is_dir()
    return folder


def test_run_writes_every_artifact_and_moves_latest(project: Path, finished: Path) -> None:
    for name in ARTIFACTS:
        assert (finished / name).is_file(), name
    latest = project / "data" / "reviews" / REVIEW / "latest"
    assert latest.resolve() == finished.resolve()
    manifest = json.loads((finished / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"search", "dedupe", "screen", "extract", "synthesize",
                                       "report"}
    assert manifest["protocol"]["path"] == f"queries/{REVIEW}.toml"
    assert manifest["artifacts"]["records.csv"] == _sha(finished / "records.csv")


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_records_cover_every_snapshot_file(finished: Path) -> None:
    records = _rows(finished / "records.csv")
    by_source: dict[str, int] = {}
    for row in records:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    # Every record of every file is read; those dated after the window are not identified.
    search = json.loads((finished / "search.json").read_text())
    in_file = {s["source"]: s["records_in_file"] for s in search["sources"]}
    assert in_file == {"pubmed": 27, "publisher-pmc": 88, "registries": 39,
                       "indexes-mirrors": 125}
    for source in search["sources"]:
        assert by_source[source["source"]] == source["count"]
        assert source["count"] == source["records_in_file"] - source["outside_window"]
    assert sum(s["outside_window"] for s in search["sources"]) >= 1
    for row in records:
        if row["source"] == "pubmed":
            assert row["source_id"] == row["pmid"] and row["record_id"] == f"pubmed:{row['pmid']}"
        else:
            assert row["source_id"].startswith("R"), row  # the corpus rec_id


def test_prisma_adds_up(finished: Path) -> None:
    prisma = json.loads((finished / "prisma.json").read_text())
    records = _rows(finished / "records.csv")
    clusters = _rows(finished / "clusters.csv")
    screening = _rows(finished / "screening.csv")
    ident = prisma["identification"]
    per_box = sum(sum(box.values()) for box in (ident["databases"], ident["registers"],
                                                ident["other_methods"]))
    assert per_box == ident["total"] == len(records)
    n_clusters = len({c["cluster_id"] for c in clusters})
    assert prisma["duplicates_removed"] == len(records) - n_clusters
    assert prisma["records_screened"] == n_clusters == len(screening)
    excluded = prisma["excluded"]
    assert sum(excluded["by_reason"].values()) == excluded["total"]
    assert excluded["total"] + prisma["awaiting_human"] + prisma["included"]["reports"] == (
        prisma["records_screened"])
    assert prisma["included"]["studies"] >= 1


def test_screening_rows_carry_decision_reason_and_evidence(finished: Path) -> None:
    screening = _rows(finished / "screening.csv")
    assert {"cluster_id", "decision", "reason", "design", "p_rct", "decided_by",
            "evidence"} <= set(screening[0])
    for row in screening:
        assert row["decision"] in {"include", "exclude", "uncertain"}
        assert row["reason"] in {"none", "wrong_population", "wrong_intervention", "protocol",
                                 "review", "wrong_design", "duplicate_report"}
        assert (row["reason"] == "none") == (row["decision"] != "exclude")
        assert row["evidence"]
        if row["decision"] == "uncertain":
            assert row["doubt"], row
    # The bundled review's best-known trial (Cotchett 2014, sham-controlled RCT) is included.
    cotchett = [r for r in screening
                if "trigger point dry needling for plantar heel pain" in r["title"].lower()]
    by_design = {r["design"]: r for r in cotchett}
    assert by_design["rct"]["decision"] == "include"
    assert by_design["rct_protocol"]["reason"] == "protocol"  # the 2011 protocol
    assert by_design["conference_abstract"]["reason"] == "duplicate_report"  # the 2013 abstract
    assert by_design["conference_abstract"]["evidence"].endswith(
        f"main report of the trial: {by_design['rct']['cluster_id']} "
        "(title and authors of the main report)")


def test_clusters_one_row_per_record(finished: Path) -> None:
    records = _rows(finished / "records.csv")
    clusters = _rows(finished / "clusters.csv")
    assert sorted(c["record_id"] for c in clusters) == sorted(r["record_id"] for r in records)


def test_second_run_is_byte_identical(project: Path, finished: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    second = Path(result.stdout.strip().splitlines()[-1])
    assert second != finished
    # The manifest (timestamps) and decisions.jsonl (its place in the hash chain) record when
    # and where in the review's history a run happened; every other artifact is identical.
    history = {"manifest.json", "decisions.jsonl"}
    names = sorted(p.relative_to(finished).as_posix() for p in finished.rglob("*")
                   if p.is_file() and p.name not in history)
    assert names == sorted(p.relative_to(second).as_posix() for p in second.rglob("*")
                           if p.is_file() and p.name not in history)
    assert "report.html" in names and "screening.csv" in names
    for name in names:
        assert (finished / name).read_bytes() == (second / name).read_bytes(), name


def test_stage_commands_rerun_on_latest(project: Path, finished: Path) -> None:
    runner = CliRunner()
    for stage in ("dedupe", "screen", "extract", "synthesize", "report"):
        result = runner.invoke(cli, [stage, "--review", REVIEW, "--root", str(project)])
        assert result.exit_code == 0, (stage, result.output)
        assert Path(result.stdout.strip().splitlines()[-1]).resolve() == finished.resolve()
    assert (finished / "report.html").exists()


def test_stage_before_search_is_a_clear_error(project: Path) -> None:
    result = CliRunner().invoke(cli, ["screen", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "no complete run yet" in result.stderr


def test_failed_run_leaves_latest_where_it_was(project: Path, finished: Path) -> None:
    latest = project / "data" / "reviews" / REVIEW / "latest"
    before = latest.resolve()
    broken = project / "data" / "snapshots" / REVIEW / "registries.ris"
    broken.write_text("TY  - JOUR\nTI  - cut short", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 2
    assert "registries.ris" in result.stderr
    assert latest.resolve() == before
    partial = list((project / "data" / "reviews" / REVIEW / "runs").glob("*.partial"))
    assert len(partial) == 1


def test_audit_verify_and_explain(project: Path, finished: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--review", REVIEW, "--root", str(project)])
    assert ok.exit_code == 0, ok.output
    screening = _rows(finished / "screening.csv")
    records = _rows(finished / "clusters.csv")
    record_id = records[0]["record_id"]
    explained = runner.invoke(cli, ["audit", "explain", "--review", REVIEW, "--root",
                                    str(project), record_id])
    assert explained.exit_code == 0, explained.output
    data = json.loads(explained.stdout)
    assert data["record_id"] == record_id
    assert data["screening"]["cluster_id"] == records[0]["cluster_id"]
    assert any(s["cluster_id"] == data["cluster_id"] for s in screening)
    bundle = runner.invoke(cli, ["audit", "bundle", "--review", REVIEW, "--root", str(project)])
    assert bundle.exit_code == 0, bundle.output
    import zipfile

    zip_path = Path(bundle.stdout.strip())
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"protocol/dry-needling-pf.toml", "run/screening.csv", "run/prisma.json",
            "decision_log.jsonl", "environment.lock", "SHA256SUMS",
            "inputs/data/snapshots/dry-needling-pf/pubmed.xml"} <= set(names)
    again = runner.invoke(cli, ["audit", "bundle", "--review", REVIEW, "--root", str(project),
                                "--output", str(zip_path.with_name("again.zip"))])
    assert zip_path.with_name("again.zip").read_bytes() == zip_path.read_bytes(), again.output
    (finished / "screening.csv").write_text("tampered\n", encoding="utf-8")
    bad = runner.invoke(cli, ["audit", "verify", "--review", REVIEW, "--root", str(project)])
    assert bad.exit_code == 1
    assert "screening.csv: SHA-256 differs" in bad.stdout


def test_python_dash_m_help() -> None:
    done = subprocess.run([sys.executable, "-m", "reviewpipe", "--help"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0
    assert "rerun a systematic review" in done.stdout
