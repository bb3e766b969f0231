"""The live path and scheduled updates, over real HTTP to the local E-utilities stand-in."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import PROJECT, REVIEW
from eutils_standin import EutilsStandin, make_article
from reviewpipe.cli import cli

NEW_PMID = "99000001"
NEW_TITLE = ("Dry needling versus sham dry needling for plantar fasciitis: a randomised "
             "controlled trial")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _env(standin: EutilsStandin) -> dict[str, str]:
    return {"NCBI_EMAIL": "tests@example.org", "REVIEWPIPE_EUTILS_URL": standin.base_url,
            "NCBI_API_KEY": "secret-test-key-123"}


def _snapshot_articles(project: Path) -> Path:
    return project / "data" / "snapshots" / REVIEW / "pubmed.xml"


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env)


def test_live_run_gives_the_same_records_as_offline(project: Path) -> None:
    offline = _invoke(["run", "--review", REVIEW, "--root", str(project)])
    assert offline.exit_code == 0, offline.output
    offline_dir = Path(offline.stdout.strip().splitlines()[-1])
    with EutilsStandin(articles=_snapshot_articles(project)) as standin:
        live = _invoke(["run", "--review", REVIEW, "--root", str(project), "--live"],
                       _env(standin))
        assert live.exit_code == 0, live.output
        queries = [r.query for r in standin.requests]
    live_dir = Path(live.stdout.strip().splitlines()[-1])
    skip = {"file", "raw_file", "raw_index"}  # where each copy was read from differs

    def pubmed_rows(folder: Path) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k not in skip}
                for r in _rows(folder / "records.csv") if r["source"] == "pubmed"]

    assert pubmed_rows(live_dir) == pubmed_rows(offline_dir)
    assert _rows(live_dir / "screening.csv") == _rows(offline_dir / "screening.csv")
    manifest = (live_dir / "manifest.json").read_text(encoding="utf-8")
    assert '"mode": "live"' in manifest and '"translation"' in manifest
    assert "secret-test-key-123" not in manifest
    assert "secret-test-key-123" not in (live_dir / "report.html").read_text(encoding="utf-8")
    assert any("usehistory=y" in q for q in queries)
    assert all("tool=reviewpipe" in q and "email=tests%40example.org" in q for q in queries)


def test_live_without_email_is_a_clear_error(project: Path) -> None:
    result = _invoke(["search", "--review", REVIEW, "--root", str(project), "--live"],
                     {"NCBI_EMAIL": ""})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: NCBI_EMAIL is not set")
    assert not (project / "data" / "reviews" / REVIEW / "latest").exists()


@pytest.fixture
def reviewed(project: Path) -> Path:
    result = _invoke(["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def test_update_flags_only_the_new_trial_then_adds_nothing(project: Path, reviewed: Path
                                                           ) -> None:
    offline_pmids = {r["pmid"] for r in _rows(reviewed / "records.csv") if r["pmid"]}
    new_article = make_article(NEW_PMID, edat=date(2026, 11, 20), title=NEW_TITLE)
    snapshot = _snapshot_articles(project).read_text(encoding="utf-8")
    with EutilsStandin(articles=snapshot) as standin:
        standin.add_articles([new_article])
        args = ["update", "--review", REVIEW, "--root", str(project), "--today", "2026-11-28"]
        first = _invoke(args, _env(standin))
        assert first.exit_code == 3, first.output
        folder = Path(first.stdout.strip().splitlines()[-1])
        trials = _rows(folder / "new-trials.csv")
        by_pmid = {t["pmid"]: t for t in trials}
        assert by_pmid[NEW_PMID]["needs_human"] == "yes"
        assert by_pmid[NEW_PMID]["decision"] in ("include", "uncertain")
        assert not set(by_pmid) & offline_pmids  # nothing already reviewed comes back
        assert NEW_PMID in (folder / "new-trials.md").read_text(encoding="utf-8")
        latest = project / "data" / "reviews" / REVIEW / "latest"
        assert latest.resolve() == folder.resolve()
        esearch = [r for r in standin.requests_for("esearch")]
        assert any("datetype=edat" in r.query and "mindate=2024%2F10%2F24" in r.query
                   for r in esearch)

        second = _invoke(args, _env(standin))
        assert second.exit_code == 0, second.output
        assert "0 new" in second.stderr
        assert latest.resolve() == folder.resolve()  # no new run for nothing new
        again = Path(second.stdout.strip().splitlines()[-1])
        assert _rows(again / "new-trials.csv") == []


def test_live_run_fetches_pmc_full_text_of_included_records(project: Path) -> None:
    # An invented JATS article stands in for an included record's PMC full text.
    jats = (PROJECT / "tests" / "fixtures" / "extract" / "trial.nxml").read_text()
    jats = jats.replace('<article-id pub-id-type="pmc">1234567</article-id>',
                        '<article-id pub-id-type="pmc">7440826</article-id>')
    with EutilsStandin(articles=_snapshot_articles(project)) as standin:
        standin.add_pmc({"PMC7440826": jats})
        live = _invoke(["run", "--review", REVIEW, "--root", str(project), "--live"],
                       _env(standin))
        assert live.exit_code == 0, live.output
        pmc_requests = [r for r in standin.requests_for("efetch") if "db=pmc" in r.query]
    assert len(pmc_requests) == 1
    folder = Path(live.stdout.strip().splitlines()[-1])
    review_dir = project / "data" / "reviews" / REVIEW
    assert (review_dir / "fulltext" / "PMC7440826.xml").is_file()
    assert list((review_dir / "raw" / "pmc").glob("efetch-pmc-*.xml"))
    manifest = (folder / "manifest.json").read_text(encoding="utf-8")
    assert '"PMC7440826"' in manifest
    outcomes = _rows(folder / "outcomes.csv")
    assert any(r["source"].startswith("pmc:") for r in outcomes)
