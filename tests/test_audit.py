"""Audit: tampering with a logged decision, a raw file or an artifact is named by `audit verify`;
a killed update resumes to the same result as an uninterrupted one."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from conftest import REVIEW
from eutils_standin import EutilsStandin, make_article
from reviewpipe.cli import cli

NEW_TITLE = "Dry needling plus stretching for plantar fasciitis: a randomised controlled trial"


def _run(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env)


def _review_dir(project: Path) -> Path:
    return project / "data" / "reviews" / REVIEW


def _live_review(project: Path, standin: EutilsStandin) -> Path:
    env = {"NCBI_EMAIL": "tests@example.org", "REVIEWPIPE_EUTILS_URL": standin.base_url}
    result = _run(["run", "--review", REVIEW, "--root", str(project), "--live"], env)
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def test_verify_names_each_tampered_entry_raw_file_and_artifact(project: Path) -> None:
    snapshot = project / "data" / "snapshots" / REVIEW / "pubmed.xml"
    with EutilsStandin(articles=snapshot) as standin:
        folder = _live_review(project, standin)
    args = ["audit", "verify", "--review", REVIEW, "--root", str(project)]
    clean = _run(args)
    assert clean.exit_code == 0, clean.output
    assert clean.stdout == ""

    # 1. a logged decision, edited behind the triggers' back
    db = sqlite3.connect(_review_dir(project) / "review.sqlite")
    seq = db.execute("SELECT seq FROM decision_log WHERE stage = 'screen' ORDER BY seq "
                     "LIMIT 1").fetchone()[0]
    db.execute("DROP TRIGGER decision_log_no_update")
    db.execute("UPDATE decision_log SET decision = 'include' WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    # 2. a raw response as archived
    manifest = json.loads((folder / "manifest.json").read_text())
    pubmed = next(s for s in manifest["search"] if s["source"] == "pubmed")
    raw = project / pubmed["raw_dir"] / pubmed["raw_files"][-1]["path"]
    raw.write_bytes(raw.read_bytes().replace(b"plantar", b"palmar", 1))
    # 3. an artifact
    screening = folder / "screening.csv"
    screening.write_text(screening.read_text().replace("exclude", "include", 1))

    tampered = _run(args)
    assert tampered.exit_code == 1
    lines = tampered.stdout.splitlines()
    assert any(line.startswith(f"decision_log entry {seq} (screen ") and "(edited)" in line
               for line in lines), lines
    assert f"{raw}: raw response differs from the one archived" in lines
    assert f"{screening}: SHA-256 differs from the manifest (changed after the run)" in lines


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_update_killed_midway_resumes_to_the_same_result(project: Path, tmp_path: Path
                                                         ) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(project, twin)
    snapshot = (project / "data" / "snapshots" / REVIEW / "pubmed.xml").read_text()
    articles = [make_article(str(99000000 + i), edat=date(2026, 11, 20), title=NEW_TITLE)
                for i in range(1, 4)]
    for root in (project, twin):
        assert _run(["run", "--review", REVIEW, "--root", str(root)]).exit_code == 0
    with EutilsStandin(articles=snapshot) as standin:
        standin.add_articles(articles)
        env = {**os.environ, "NCBI_EMAIL": "tests@example.org",
               "REVIEWPIPE_EUTILS_URL": standin.base_url}
        update = ["update", "--review", REVIEW, "--today", "2026-11-28"]
        uninterrupted = subprocess.run(
            [sys.executable, "-m", "reviewpipe", *update, "--root", str(twin)], env=env,
            capture_output=True, text=True, timeout=120, check=False)
        assert uninterrupted.returncode == 3, uninterrupted.stderr
        # The killed run: its first efetch answers slowly, and it is killed while waiting.
        standin.fault("slow", on="efetch", delay=5.0)
        before = len(standin.requests_for("efetch"))
        process = subprocess.Popen(
            [sys.executable, "-m", "reviewpipe", *update, "--root", str(project)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while (len(standin.requests_for("efetch")) == before
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert process.poll() is None  # still waiting on the slow efetch
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        standin.clear_faults()
        resumed = subprocess.run(
            [sys.executable, "-m", "reviewpipe", *update, "--root", str(project)], env=env,
            capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 3, resumed.stderr
    done = Path(resumed.stdout.strip().splitlines()[-1])
    expected = Path(uninterrupted.stdout.strip().splitlines()[-1])
    for name in ("new-trials.csv", "screening.csv", "clusters.csv", "prisma.json"):
        assert (done / name).read_bytes() == (expected / name).read_bytes(), name
    assert {r["pmid"] for r in _rows(done / "new-trials.csv")} >= {"99000001", "99000002",
                                                                   "99000003"}
    partial = list((_review_dir(project) / "runs").glob("*.partial"))
    assert len(partial) <= 1  # the killed run's folder, left for inspection, never `latest`


def test_verify_rederives_machine_decisions_from_archived_inputs(project: Path) -> None:
    import hashlib

    done = _run(["run", "--review", REVIEW, "--root", str(project)])
    assert done.exit_code == 0, done.output
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert (folder / "inputs" / f"{REVIEW}.toml").read_bytes() == (
        project / "queries" / f"{REVIEW}.toml").read_bytes()
    args = ["audit", "verify", "--review", REVIEW, "--root", str(project)]
    assert _run(args).exit_code == 0
    # A forger rewrites one machine decision and the manifest's hash to match: the hashes
    # agree, but re-deriving from the inputs does not.
    screening = folder / "screening.csv"
    rows = _rows(screening)
    target = next(r for r in rows if r["machine_decision"] == "exclude")
    target["machine_decision"], target["machine_reason"] = "include", "none"
    with screening.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"]["screening.csv"] = hashlib.sha256(screening.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    forged = _run(args)
    assert forged.exit_code == 1
    assert (f"{folder.name}: cluster {target['cluster_id']}: recorded machine decision "
            f"include/none, re-derived exclude/") in forged.stdout
