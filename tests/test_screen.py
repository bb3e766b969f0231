"""Screening: each reason code, human decisions (overrides, conflicts, kappa) and ranking."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import PROJECT, REVIEW
from reviewpipe.cli import cli
from reviewpipe.protocol import load_protocol
from reviewpipe.ranking import rank_for_human
from reviewpipe.screen import apply_study_links, decide

PROTOCOL = load_protocol(PROJECT / "queries" / f"{REVIEW}.toml")


def _record(cluster_id: str, title: str, abstract: str, types: list[str] | None = None,
            study: str | None = None, **extra: object) -> dict:
    return {"cluster_id": cluster_id, "study_id": study or "S" + cluster_id[1:], "title": title,
            "abstract": abstract, "publication_types": types or [], "mesh": [], "keywords": [],
            "authors": extra.pop("authors", ["Example A"]), "pmid": extra.pop("pmid", None),
            **extra}


RCT = _record(
    "C1", "Dry needling for plantar fasciitis: a randomised controlled trial",
    "Background: Plantar fasciitis causes heel pain. Methods: Sixty adults with plantar "
    "fasciitis were randomly allocated to dry needling plus stretching or stretching alone. "
    "Results: Pain on a visual analogue scale fell more after dry needling.",
    ["Journal Article", "Randomized Controlled Trial"], pmid="1")
NECK = _record(
    "C2", "Dry needling of the upper trapezius in office workers with neck pain: a randomized "
    "trial",
    "Background: Dry needling is used for many conditions, such as neck pain, low back pain and "
    "plantar fasciitis. Methods: Forty office workers with neck pain were randomised to dry "
    "needling or stretching.", ["Journal Article", "Randomized Controlled Trial"])
LASER = _record(
    "C3", "High-intensity laser versus shock wave therapy for plantar fasciitis: a randomised "
    "trial",
    "Methods: Patients with plantar fasciitis (PF) were randomised to laser or shock wave "
    "therapy. Results: Pain fell in both groups with PF.",
    ["Journal Article", "Randomized Controlled Trial"])
PROTOCOL_PAPER = _record(
    "C4", "Dry needling for plantar heel pain: study protocol for a randomised controlled "
    "trial",
    "Methods: Eighty participants with plantar heel pain will be randomised to dry needling or "
    "sham.", ["Journal Article", "Randomized Controlled Trial"])
REGISTRY = _record(
    "C5", "Dry Needling in Plantar Fasciitis",
    "Study type: Interventional. Participants with plantar fasciitis receive dry needling. "
    "Recruitment status: recruiting.", ["Registry Record"])
REVIEW_PAPER = _record(
    "C6", "Dry needling for plantar heel pain: a systematic review and meta-analysis",
    "Methods: Databases were searched for trials of dry needling in plantar heel pain.",
    ["Journal Article", "Systematic Review"])
CASE = _record(
    "C7", "Dry needling for chronic plantar fasciitis in a runner: a case report",
    "A runner with plantar fasciitis received dry needling over six sessions.",
    ["Case Reports"])
SECONDARY = _record(
    "C8", "Cost-effectiveness of dry needling for plantar fasciitis: a secondary analysis of a "
    "randomised controlled trial",
    "Methods: This economic evaluation used data from a trial in adults with plantar fasciitis "
    "randomised to dry needling plus stretching or stretching alone.",
    ["Journal Article", "Randomized Controlled Trial"], study="S1")


@pytest.mark.parametrize(("record", "decision", "reason"), [
    (RCT, "include", "none"),
    (NECK, "exclude", "wrong_population"),
    (LASER, "exclude", "wrong_intervention"),
    (PROTOCOL_PAPER, "exclude", "protocol"),
    (REGISTRY, "exclude", "protocol"),
    (REVIEW_PAPER, "exclude", "review"),
    (CASE, "exclude", "wrong_design"),
])
def test_each_reason_code_with_evidence(record: dict, decision: str, reason: str) -> None:
    row = decide(record, PROTOCOL)
    assert (row["decision"], row["reason"]) == (decision, reason), row["evidence"]
    assert row["evidence"].startswith("population [")


def test_passing_mention_is_the_evidence_for_wrong_population() -> None:
    row = decide(NECK, PROTOCOL)
    assert "mentioned only in passing: Background: Dry needling is used for many" in (
        row["evidence"])


def test_a_defined_abbreviation_counts_as_the_term() -> None:
    row = decide(LASER, PROTOCOL)
    assert row["evidence"].startswith("population [title]")
    assert "intervention [record]: not named" in row["evidence"]


def test_protocol_tagged_rct_is_not_believed() -> None:
    row = decide(PROTOCOL_PAPER, PROTOCOL)
    assert row["design"] == "rct_protocol"


def test_secondary_analysis_of_an_included_trial_is_a_duplicate_report() -> None:
    main = dict(RCT, study_id="S1")
    rows = [decide(main, PROTOCOL), decide(SECONDARY, PROTOCOL)]
    apply_study_links(rows)
    assert rows[1]["design"] == "secondary_analysis"
    assert (rows[1]["decision"], rows[1]["reason"]) == ("exclude", "duplicate_report")
    assert "main report of the trial: C1" in rows[1]["evidence"]


def test_secondary_analysis_without_its_main_report_goes_to_a_human() -> None:
    rows = [decide(dict(SECONDARY, study_id="S9"), PROTOCOL)]
    apply_study_links(rows)
    assert rows[0]["decision"] == "uncertain"
    assert "find the main report" in rows[0]["doubt"]


def test_no_abstract_and_no_named_population_is_uncertain() -> None:
    record = _record("C9", "Dry needling: a randomised trial", "",
                     ["Journal Article", "Randomized Controlled Trial"])
    row = decide(record, PROTOCOL)
    assert row["decision"] == "uncertain"
    assert "population: no abstract" in row["doubt"]


# -- humans, through the real CLI ---------------------------------------------------------

def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _run(project: Path) -> Path:
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def _write_decisions(project: Path, rows: list[list[str]]) -> Path:
    path = project / "queries" / f"{REVIEW}.decisions.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "reviewer", "decision", "reason", "note", "date"])
        writer.writerows(rows)
    return path


def test_humans_override_machine_and_survive_reruns(project: Path) -> None:
    first = _run(project)
    machine = {r["cluster_id"]: r for r in _rows(first / "screening.csv")}
    included = next(c for c, r in machine.items() if r["decision"] == "include")
    excluded = next(c for c, r in machine.items() if r["decision"] == "exclude")
    record_of_excluded = next(r["record_id"] for r in _rows(first / "clusters.csv")
                              if r["cluster_id"] == excluded)
    path = _write_decisions(project, [
        [included, "ana", "exclude", "wrong_design", "full text: quasi-random", "2026-11-01"],
        [included, "ben", "exclude", "wrong_design", "", "2026-11-02"],
        [record_of_excluded, "ana", "include", "none", "registry says randomised",
         "2026-11-01"],
    ])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for _ in range(2):
        folder = _run(project)
        rows = {r["cluster_id"]: r for r in _rows(folder / "screening.csv")}
        assert (rows[included]["decision"], rows[included]["reason"]) == (
            "exclude", "wrong_design")
        assert rows[included]["decided_by"] == "human:ana,ben"
        assert rows[included]["machine_decision"] == "include"
        assert "human note: full text: quasi-random" in rows[included]["evidence"]
        assert rows[excluded]["decision"] == "include"  # a record id reaches its cluster
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # never written


def test_disagreement_is_a_conflict_with_kappa_until_consensus(project: Path) -> None:
    first = _run(project)
    machine = _rows(first / "screening.csv")
    ids = [r["cluster_id"] for r in machine[:4]]
    rows = [[ids[0], "ana", "include", "none", "", ""], [ids[0], "ben", "exclude", "review",
                                                          "", ""],
            [ids[1], "ana", "exclude", "review", "", ""], [ids[1], "ben", "exclude", "review",
                                                           "", ""],
            [ids[2], "ana", "include", "none", "", ""], [ids[2], "ben", "include", "none", "",
                                                         ""],
            [ids[3], "ana", "exclude", "wrong_design", "", ""],
            [ids[3], "ben", "exclude", "wrong_design", "", ""]]
    _write_decisions(project, rows)
    folder = _run(project)
    conflicts = _rows(folder / "conflicts.csv")
    assert [c["cluster_id"] for c in conflicts] == [ids[0]]
    assert conflicts[0]["verdicts"] == "ana: include/none; ben: exclude/review"
    screening = {r["cluster_id"]: r for r in _rows(folder / "screening.csv")}
    assert screening[ids[0]]["decision"] == "uncertain"
    assert screening[ids[0]]["decided_by"] == "conflict"
    import json

    agreement = json.loads((folder / "agreement.json").read_text())
    kappa = agreement["kappa"][0]
    # 4 shared items, 3 agreed; decisions ana=[inc,exc,inc,exc], ben=[exc,exc,inc,exc]:
    # po = 0.75, pe = 0.5*0.25 + 0.5*0.75 = 0.5, kappa = (0.75-0.5)/(1-0.5) = 0.5
    assert kappa == {"reviewers": "ana vs ben", "items": 4, "agreed": 3, "kappa": 0.5}
    _write_decisions(project, [*rows, [ids[0], "consensus", "exclude", "review", "", ""]])
    resolved = _run(project)
    assert _rows(resolved / "conflicts.csv") == []
    final = {r["cluster_id"]: r for r in _rows(resolved / "screening.csv")}
    assert (final[ids[0]]["decision"], final[ids[0]]["decided_by"]) == (
        "exclude", "human:consensus")


def test_malformed_decisions_file_names_file_and_line(project: Path) -> None:
    path = _write_decisions(project, [["C1", "ana", "include", "none", "", ""],
                                      ["C2", "ana", "maybe", "none", "", ""]])
    result = CliRunner().invoke(cli, ["run", "--review", REVIEW, "--root", str(project)])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: {path}:3: decision must be one of include, exclude, "
                             "uncertain, got 'maybe'\n")
    assert not (project / "data" / "reviews").exists()  # checked before anything is written


def test_next_shows_records_needing_a_human(project: Path) -> None:
    folder = _run(project)
    pending = [r for r in _rows(folder / "screening.csv") if r["decision"] == "uncertain"]
    result = CliRunner().invoke(cli, ["screen", "--review", REVIEW, "--root", str(project),
                                      "--next", "5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == min(5, len(pending))
    assert {line.split("\t")[0] for line in lines} <= {r["cluster_id"] for r in pending}


def test_ranking_learns_from_human_decisions() -> None:
    labelled = ["dry needling randomised trial plantar fasciitis heel pain",
                "dry needling trial plantar heel pain sham",
                "neck pain manual therapy cohort", "knee osteoarthritis exercise survey"]
    pending = ["ankle sprain survey of athletes", "plantar heel pain dry needling randomised"]
    scores = rank_for_human(labelled, [1, 1, 0, 0], pending, [0.9, 0.1], random_state=0)
    assert scores[1] > scores[0]
    assert rank_for_human(labelled, [1, 1, 0, 0], pending, [0.9, 0.1], random_state=0) == scores
    # Cold start (one class only): the machine's own scores rank.
    assert rank_for_human(labelled[:2], [1, 1], pending, [0.9, 0.1]) == [0.9, 0.1]


def test_classify_design_cli_on_a_csv(tmp_path: Path) -> None:
    source = tmp_path / "records.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "abstract", "publication_types"])
        writer.writerow(["1", RCT["title"], RCT["abstract"], ""])
        writer.writerow(["2", PROTOCOL_PAPER["title"], PROTOCOL_PAPER["abstract"],
                         "Journal Article;Randomized Controlled Trial"])
        writer.writerow(["3", CASE["title"], CASE["abstract"], ""])
    out = tmp_path / "designs.csv"
    result = CliRunner().invoke(cli, ["classify-design", "--input", str(source), "--output",
                                      str(out)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert [r["design"] for r in rows] == ["rct", "rct_protocol", "case_report"]
    assert float(rows[0]["p_rct"]) > 0.9 and float(rows[2]["p_rct"]) < 0.1
    assert rows[1]["publication_types"] == "Journal Article;Randomized Controlled Trial"


def test_classify_design_cli_refuses_a_csv_without_abstracts(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("id,title\n1,A trial\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify-design", "--input", str(source), "--output",
                                      str(tmp_path / "out.csv")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {source}:1: missing column(s) abstract\n"


def test_parallel_classification_equals_serial() -> None:
    from reviewpipe.design import classify_many

    items = [(r["title"], r["abstract"], r["publication_types"])
             for r in (RCT, NECK, LASER, PROTOCOL_PAPER, REGISTRY, REVIEW_PAPER, CASE)] * 3
    assert classify_many(items, workers=2) == classify_many(items, workers=1)


def test_included_clusters_reads_rows_with_line_breaks_too(tmp_path: Path) -> None:
    from reviewpipe.runs import Run
    from reviewpipe.screen import SCREENING_COLUMNS, included_clusters

    run = Run(run_id="r", dir=tmp_path, manifest={"stages": {"screen": {"counts": {
        "screened": 3}}}})
    rows = [{"cluster_id": "C1", "decision": "include", "evidence": "one line"},
            {"cluster_id": "C2", "decision": "exclude",
             "evidence": "two lines\nC3,include,looks like a row"},
            {"cluster_id": "C4", "decision": "include", "evidence": ""}]
    run.write_csv("screening.csv", SCREENING_COLUMNS, rows)
    assert included_clusters(run) == ["C1", "C4"]
    rows[1]["evidence"] = "one line again"
    run.write_csv("screening.csv", SCREENING_COLUMNS, rows)
    assert included_clusters(run) == ["C1", "C4"]
