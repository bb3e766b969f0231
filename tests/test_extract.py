"""Stage 4, extract: numbers, arms, instruments, time points, comparisons, JATS, human rows.

The example abstracts below are written for these tests in the style of the corpus
paraphrases; the shared-marked tests at the end score the rules on ../shared.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path

import pytest

from conftest import load_script
from reviewpipe.comparisons import assign_comparison
from reviewpipe.errors import InputError
from reviewpipe.extract import AE_COLUMNS, OUTCOME_COLUMNS, STUDY_COLUMNS, extract
from reviewpipe.extract_doc import Extraction
from reviewpipe.extract_tables import extract_from_jats
from reviewpipe.extract_values import extract_from_text
from reviewpipe.human_extraction import read_human_extraction
from reviewpipe.jats import read_jats
from reviewpipe.numbers import (
    find_p_values,
    find_times,
    parse_cell,
    parse_number,
    parse_number_words,
    to_weeks,
)
from reviewpipe.protocol import load_protocol
from reviewpipe.readers.safexml import ENTITIES_REFUSED
from reviewpipe.runs import Run
from reviewpipe.store import Store

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "extract"
SHARED = PROJECT.parent / "shared"
WORKS = SHARED / "corpus" / "works_dev.jsonl"
JATS_SAMPLES = SHARED / "datasets" / "pmc_jats_samples"

ADD_ON = (
    "Methods: Ninety-six adults with plantar heel pain were randomised to dry needling plus usual "
    "care (n = 49) or usual care alone (n = 47). Pain was rated on a visual analogue scale (VAS, "
    "mm) and function with the Foot Function Index (FFI) at baseline, at six weeks and at 3 "
    "months. Results: At six weeks the adjusted mean difference was -12.5 mm for heel pain (95% "
    "CI -20.1 to -4.9; p=0.001). At 3 months, mean FFI was 28.4 (SD 12.2) in the dry needling "
    "group versus 35.0 (SD 14.1) in the usual care group (P = 0.02). Minor adverse events were "
    "reported by 9 of 49 needling participants.")
SHAM = (
    "Seventy-two patients were randomly allocated to real or sham dry needling. Pain was measured "
    "on the numeric pain rating scale (NPRS, 0-10) immediately after treatment and at four weeks. "
    "At four weeks, NPRS fell from 6.1 ± 1.2 to 3.0 ± 1.5 in the real needling group and from "
    "6.0 ± 1.3 to 4.9 ± 1.4 in the sham group. Immediately after treatment the groups did not "
    "differ (NPRS P = 0.41).")
OTHER = (
    "One hundred and eleven patients were randomised into a dry needling group (n = 56) and a "
    "corticosteroid injection group (n = 55). Function was scored on the Foot and Ankle Ability "
    "Measure (FAAM) at 1 year; median FAAM was 82 (IQR 70 to 90) after needling.")
PER_ARM = ("Eighty patients were enrolled and assigned 40 per arm. One arm received dry needling "
           "and the other extracorporeal shockwave therapy. The Lower Extremity Functional Scale "
           "was recorded at 4, 8 and 12 weeks.")
UNCLEAR = ("Forty patients were divided between a dry needling group and a control group. Heel "
           "pain was rated on a visual analogue scale.")


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(PROJECT / "queries" / "dry-needling-pf.toml")


def _spans_slice_back(text: str, extraction: Extraction) -> None:
    for value in extraction.values:
        ev = value.evidence
        assert text[ev.start:ev.end] == ev.snippet, value
        assert ev.span == f"{ev.start}-{ev.end}"
    for mention in extraction.instruments:
        assert text[mention.evidence.start:mention.evidence.end] == mention.evidence.snippet
    for arm in extraction.arms:
        if arm.n_evidence:
            assert parse_number(arm.n_evidence.snippet) == arm.n
    if extraction.n_evidence:
        assert parse_number(extraction.n_evidence.snippet) == extraction.n_randomised


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("words, value", [
    ("Eighty-four", 84), ("One hundred and eleven", 111), ("Sixteen", 16), ("twenty one", 21),
    ("seventy-five", 75), ("a single", 1), ("two thousand and five", 2005), ("banana", None),
])
def test_number_words(words, value):
    assert parse_number_words(words) == value


@pytest.mark.parametrize("text, weeks", [
    ("at four weeks", [4.0]), ("3 months", [13.04]), ("1 year", [52.14]), ("15 days", [2.14]),
    ("immediately after treatment", [0.0]),
    ("at baseline and at 4, 8 and 12 weeks", [None, 4, 8, 12]),
    ("1 week, 4 weeks and 3 months after the first session", [1.0, 4.0, 13.04]),
    ("at the fourth week", [4.0]), ("at week 12", [12.0]), ("at the six-week end point", [6.0]),
])
def test_time_points_become_weeks(text, weeks):
    found = [t.weeks for t in find_times(text) if not t.duration]
    assert found == weeks


def test_durations_and_ages_are_not_time_points():
    text = ("Adults aged 18 to 65 years, whose pain had lasted at least one month, were treated "
            "once a week for six weeks and assessed at 12 weeks.")
    kept = [t.weeks for t in find_times(text) if not t.duration]
    assert kept == [12.0]
    assert to_weeks(6, "months") == 26.07


def test_p_values_are_normalised():
    text = "p=0.002; P < .001, p <= .05, P below 0.001 (P = 0.013)"
    assert [p.text for p in find_p_values(text)] == ["0.002", "<0.001", "<=0.05", "<0.001",
                                                     "0.013"]


@pytest.mark.parametrize("cell, kind, fields", [
    ("57.4 (8.0)", "mean_sd", (57.4, 8.0)), ("0.12±0.02", "mean_sd", (0.12, 0.02)),
    ("0.93 (0.84–1.03)", "ci", (0.93, None)), ("<0.001", "p", (None, None)),
    ("98 942", "number", (98942.0, None)), ("26 (51%)", "count_pct", (26.0, 51.0)),
    ("n.d", None, None),
])
def test_table_cells(cell, kind, fields):
    stat = parse_cell(cell)
    if kind is None:
        assert stat is None
        return
    assert stat.kind == kind
    assert (stat.value, stat.spread) == fields
    assert cell[stat.start:stat.end].strip() == cell.strip()


# ------------------------------------------------------------------ abstracts


def test_add_on_trial_values_spans_and_scale(protocol):
    e = extract_from_text(ADD_ON, source="abstract", protocol=protocol)
    _spans_slice_back(ADD_ON, e)
    assert e.n_randomised == 96 and e.n_evidence.snippet == "Ninety-six"
    assert [(a.role, a.n) for a in e.arms] == [("dn", 49), ("control", 47)]
    assert "dry needling" in e.arms[0].label
    assert {i.name: i.scale for i in e.instruments} == {"VAS": "mm", "FFI": ""}
    assert e.timepoints == [6.0, 13.04]
    md = next(v for v in e.values if v.md is not None)
    assert (md.instrument, md.md, md.ci_low, md.ci_high, md.p) == ("VAS", -12.5, -20.1, -4.9,
                                                                    "0.001")
    assert (md.value_type, md.scale, md.timepoint_weeks, md.arm) == ("difference", "mm", 6.0, "")
    assert md.evidence.snippet.startswith("-12.5 mm for heel pain (95% CI")
    finals = {v.arm: (v.mean, v.sd, v.n) for v in e.values if v.value_type == "final"}
    assert finals == {e.arms[0].label: (28.4, 12.2, 49), e.arms[1].label: (35.0, 14.1, 47)}
    assert all(v.timepoint_weeks == 13.04 for v in e.values if v.instrument == "FFI")
    p_row = next(v for v in e.values if v.p == "0.02")
    assert (p_row.instrument, p_row.value_type, p_row.arm) == ("FFI", "difference", "")
    [ae] = e.adverse_events
    assert (ae.arm, ae.kind, ae.count, ae.denominator) == (e.arms[0].label, "minor", 9, 49)


def test_sham_trial_words_baseline_and_time(protocol):
    e = extract_from_text(SHAM, source="abstract", protocol=protocol)
    _spans_slice_back(SHAM, e)
    assert e.n_randomised == 72
    real, sham = e.arms
    assert (real.label, sham.label) == ("real dry needling", "sham dry needling")
    assert {i.name: i.scale for i in e.instruments} == {"NPRS": "0-10"}
    rows = {(v.arm, v.value_type, v.timepoint_weeks): v.mean for v in e.values if v.arm}
    assert rows == {(real.label, "baseline", None): 6.1, (real.label, "final", 4.0): 3.0,
                    (sham.label, "baseline", None): 6.0, (sham.label, "final", 4.0): 4.9}
    p_row = next(v for v in e.values if v.p)
    assert (p_row.p, p_row.timepoint_weeks, p_row.value_type) == ("0.41", 0.0, "difference")


def test_other_treatment_trial_median_and_year(protocol):
    e = extract_from_text(OTHER, source="abstract", protocol=protocol)
    _spans_slice_back(OTHER, e)
    assert e.n_randomised == 111
    assert [a.n for a in e.arms] == [56, 55]
    [median] = [v for v in e.values if v.median is not None]
    assert (median.instrument, median.median, median.iqr_low, median.iqr_high) == (
        "FAAM", 82.0, 70.0, 90.0)
    assert median.timepoint_weeks == 52.14 and median.arm == e.arms[0].label


def test_equal_arms_and_instrument_only_mentions(protocol):
    e = extract_from_text(PER_ARM, source="abstract", protocol=protocol)
    assert e.n_randomised == 80
    assert [(a.role, a.n) for a in e.arms] == [("dn", 40), ("control", 40)]
    assert [i.name for i in e.instruments] == ["LEFS"] and not e.values
    assert e.timepoints == [4.0, 8.0, 12.0]


# ------------------------------------------------------------------ comparisons


@pytest.mark.parametrize("text, expected, cue", [
    (ADD_ON, "dn_plus_routine_vs_routine", "plus dry needling"),
    (SHAM, "dn_vs_sham", "'sham'"),
    (OTHER, "dn_vs_other", "'corticosteroid'"),
    (PER_ARM, "dn_vs_other", "'shock wave'"),
    (UNCLEAR, "unclear", "does not say what it received"),
])
def test_comparison_assignment(protocol, text, expected, cue):
    e = extract_from_text(text, source="abstract", protocol=protocol)
    comparison, evidence = assign_comparison({"title": ""}, e.arms, protocol)
    assert comparison == expected
    assert cue in evidence


def test_comparison_without_arms_reads_the_title(protocol):
    record = {"title": "Dry needling versus kinesio taping for plantar fasciitis"}
    assert assign_comparison(record, [], protocol)[0] == "dn_vs_other"
    assert assign_comparison({"title": "Heel pain"}, [], protocol) == (
        "unclear", "no arms found in the abstract or title")


# ------------------------------------------------------------------ JATS


def test_jats_tables_and_body(protocol):
    article = read_jats(FIXTURES / "trial.nxml")
    assert (article.pmcid, article.pmid, article.doi) == ("PMC1234567", "99999999",
                                                          "10.9999/example.2024.1")
    [table] = article.tables
    assert table.label == "Table 2" and table.n_header_rows == 2
    cell = table.cell(3, 2)
    assert (cell.source, cell.text, cell.value.kind) == ("pmc:Table 2 r3c2", "3.1 ± 1.4",
                                                         "mean_sd")
    assert table.cell(2, 1).text == "Outcome"  # rowspan copied down
    e, _ = extract_from_jats((FIXTURES / "trial.nxml").read_bytes(), protocol=protocol)
    cells = {v.evidence.source: v for v in e.values if v.evidence.source.startswith("pmc:Table")}
    dn = cells["pmc:Table 2 r3c2"]
    assert (dn.arm, dn.instrument, dn.mean, dn.sd, dn.timepoint_weeks, dn.n) == (
        "dry needling", "VAS", 3.1, 1.4, 4.0, 30)
    assert cells["pmc:Table 2 r4c3"].mean == 41.0
    assert cells["pmc:Table 2 r3c4"].p == "<0.001"
    assert "pmc:Table 2 r5c2" not in cells  # adverse events are not an instrument
    md = next(v for v in e.values if v.md is not None)
    assert md.evidence.source == "pmc:body"
    assert article.body[md.evidence.start:md.evidence.end] == md.evidence.snippet


SECTIONED_TABLE = b"""<article><front><article-meta><abstract><p>Forty adults were randomised to
dry needling (n = 20) or stretching (n = 20).</p></abstract></article-meta></front><body>
<table-wrap><label>Table 3</label><table><thead><tr><th>Measure</th><th>Dry needling</th>
<th>Stretching</th><th>Mean difference (95% CI)</th></tr></thead><tbody>
<tr><td>Visual analogue scale</td><td/><td/><td/></tr>
<tr><td>Baseline</td><td>6.1 (1.0)</td><td>6.0 (1.2)</td><td/></tr>
<tr><td>6 weeks</td><td>3.2 (1.1)</td><td>4.4 (1.3)</td><td>-1.2 (-2.0 to -0.4)</td></tr>
<tr><td>Walking distance, m</td><td>300 (20)</td><td>280 (25)</td><td/></tr>
</tbody></table></table-wrap></body></article>"""


def test_jats_section_rows_times_and_differences(protocol):
    e, _ = extract_from_jats(SECTIONED_TABLE, protocol=protocol)
    got = [(v.evidence.source, v.arm, v.value_type, v.timepoint_weeks, v.mean, v.md, v.ci_low)
           for v in e.values]
    assert got == [
        ("pmc:Table 3 r3c2", "dry needling", "baseline", None, 6.1, None, None),
        ("pmc:Table 3 r3c3", "stretching", "baseline", None, 6.0, None, None),
        ("pmc:Table 3 r4c2", "dry needling", "final", 6.0, 3.2, None, None),
        ("pmc:Table 3 r4c3", "stretching", "final", 6.0, 4.4, None, None),
        ("pmc:Table 3 r4c4", "", "difference", 6.0, None, -1.2, -2.0),
    ]  # walking distance is not a protocol instrument: no rows
    assert all(v.instrument == "VAS" for v in e.values)


def test_jats_with_entity_declaration_is_refused(protocol, tmp_path):
    with pytest.raises(InputError) as caught:
        read_jats(FIXTURES / "entity.nxml")
    assert ENTITIES_REFUSED in str(caught.value)
    with pytest.raises(InputError):
        extract_from_jats((FIXTURES / "entity.nxml").read_bytes(), protocol=protocol)
    broken = tmp_path / "broken.xml"
    broken.write_text("<article><body><p>unclosed</body></article>")
    with pytest.raises(InputError, match="malformed XML"):
        read_jats(broken)


# ------------------------------------------------------------------ human extraction


def test_human_extraction_is_read_and_checked(protocol):
    rows = read_human_extraction(FIXTURES / "extraction.csv", protocol)
    assert [(r["instrument"], r["timepoint_weeks"], r["md"], r["n"]) for r in rows] == [
        ("VAS", 6.0, -13.0, None), ("VAS", 12.0, None, 41)]
    with pytest.raises(InputError) as caught:
        read_human_extraction(FIXTURES / "extraction_bad.csv", protocol)
    assert caught.value.line == 3
    assert "timepoint_weeks must be a number" in str(caught.value)


@pytest.mark.parametrize("header, row, message, line", [
    ("cluster_id,arm,instrument", "c1,a,VAS", "missing column(s)", 1),
    (None, "c1,a,pain,GONIOMETER,4,,,,,,,,,ann,", "not in the protocol", 2),
    (None, "c1,a,pain,VAS,4,,,,,,3,1,,ann,", "ci_low is above ci_high", 2),
    (None, "c1,a,pain,VAS,4,,,,,,,,big,ann,", "p must look like", 2),
    (None, ",a,pain,VAS,4,,,,,,,,,ann,", "must not be empty", 2),
])
def test_malformed_human_extraction(protocol, tmp_path, header, row, message, line):
    path = tmp_path / "x.extraction.csv"
    header = header or ("cluster_id,arm,outcome,instrument,timepoint_weeks,n,mean,sd,"
                        "mean_change,md,ci_low,ci_high,p,reviewer,note")
    path.write_text(f"{header}\n{row}\n")
    with pytest.raises(InputError) as caught:
        read_human_extraction(path, protocol)
    assert message in caught.value.message and caught.value.line == line


# ------------------------------------------------------------------ the stage


ABSTRACT_1 = (
    "Eighty-four adults were allocated to real or sham trigger point dry needling. First-step "
    "pain was rated on a visual analogue scale (VAS, mm). At six weeks the adjusted mean "
    "difference was -14.4 mm for first-step pain (95% CI -23.5 to -5.2; p=0.002). Minor "
    "transient adverse events were recorded at 70 real-needling appointments versus a single "
    "sham appointment.")


def _stage_inputs(tmp_path: Path, with_human: bool, with_fulltext: bool):
    root = tmp_path / "project"
    (root / "queries").mkdir(parents=True)
    protocol_path = root / "queries" / "dry-needling-pf.toml"
    protocol_path.write_bytes((PROJECT / "queries" / "dry-needling-pf.toml").read_bytes())
    if with_human:
        (root / "queries" / "dry-needling-pf.extraction.csv").write_bytes(
            (FIXTURES / "extraction.csv").read_bytes())
    review = root / "data" / "reviews" / "dry-needling-pf"
    run_dir = review / "runs" / "t.partial"
    run_dir.mkdir(parents=True)
    records = [
        {"cluster_id": "c0001", "study_id": "s1", "record_ids": ["r1"], "title": "Real vs sham",
         "abstract": ABSTRACT_1, "authors": ["Cotchett MP", "Munteanu SE"], "year": 2014,
         "pmcid": None},
        {"cluster_id": "c0002", "study_id": "s2", "record_ids": ["r2"], "title": "Other",
         "abstract": OTHER, "authors": ["Doe, Jane"], "year": 2020, "pmcid": "PMC1234567"},
        {"cluster_id": "c0003", "study_id": "s3", "record_ids": ["r3"], "title": "Excluded",
         "abstract": SHAM, "authors": [], "year": 2021, "pmcid": None},
    ]
    (run_dir / "canonical.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with (run_dir / "screening.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cluster_id", "decision", "reason"])
        writer.writerows([["c0002", "include", "none"], ["c0001", "include", "none"],
                          ["c0003", "exclude", "wrong_design"]])
    if with_fulltext:
        (review / "fulltext").mkdir()
        (review / "fulltext" / "PMC1234567.xml").write_bytes(
            (FIXTURES / "trial.nxml").read_bytes())
    return load_protocol(protocol_path), review / "review.sqlite", run_dir


def _run_stage(tmp_path: Path, **kwargs):
    protocol, store_path, run_dir = _stage_inputs(tmp_path, **kwargs)
    run = Run(run_id="t", dir=run_dir, manifest={"review": "dry-needling-pf"})
    result = extract(protocol, _store(store_path), run)
    return result, run, protocol


def _store(path: Path) -> Store:
    # extract() needs only store.path (for fulltext/); no tables are touched
    return Store(sqlite3.connect(":memory:"), path)


def _read(run: Run, name: str) -> list[dict[str, str]]:
    with (run.dir / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_stage_writes_contract_columns_and_is_deterministic(tmp_path):
    result, run, _ = _run_stage(tmp_path / "a", with_human=False, with_fulltext=False)
    again, run_b, _ = _run_stage(tmp_path / "b", with_human=False, with_fulltext=False)
    assert result.stage == "extract" and result.counts == again.counts
    for name in result.outputs:
        assert (run.dir / name).read_bytes() == (run_b.dir / name).read_bytes()
    assert run.manifest["stages"]["extract"]["counts"] == result.counts
    studies = _read(run, "studies.csv")
    assert list(studies[0]) == STUDY_COLUMNS
    assert [s["cluster_id"] for s in studies] == ["c0001", "c0002"]
    first = studies[0]
    assert (first["first_author"], first["year"], first["n_randomised"], first["comparison"]) == (
        "Cotchett", "2014", "84", "dn_vs_sham")
    outcomes = _read(run, "outcomes.csv")
    assert list(outcomes[0])[:15] == OUTCOME_COLUMNS[:15]
    md = next(r for r in outcomes if r["md"])
    assert (md["cluster_id"], md["instrument"], md["md"], md["span"], md["extracted_by"]) == (
        "c0001", "VAS", "-14.4", md["span"], "rules:extract-v1")
    start, end = map(int, md["span"].split("-"))
    assert ABSTRACT_1[start:end] == md["snippet"]
    assert any(r["cluster_id"] == "c0002" and r["instrument"] == "FAAM" for r in outcomes)
    events = _read(run, "adverse_events.csv")
    assert list(events[0]) == AE_COLUMNS
    assert [(e["count"], e["unit"]) for e in events] == [("70", "appointments"),
                                                         ("1", "appointments")]


def test_stage_human_rows_win_and_fulltext_is_used(tmp_path):
    result, run, protocol = _run_stage(tmp_path, with_human=True, with_fulltext=True)
    outcomes = _read(run, "outcomes.csv")
    vas6 = [r for r in outcomes if r["cluster_id"] == "c0001" and r["instrument"] == "VAS"
            and r["timepoint_weeks"] == "6"]
    assert [(r["md"], r["extracted_by"], r["span"]) for r in vas6] == [
        ("-13", "human:ann", "line 2")]
    assert result.counts["human_rows"] == 2 and result.counts["fulltext"] == 1
    assert any(r["source"] == "pmc:Table 2 r3c2" for r in outcomes if r["cluster_id"] == "c0002")
    human_file = protocol.path.with_name("dry-needling-pf.extraction.csv")
    assert human_file.read_bytes() == (FIXTURES / "extraction.csv").read_bytes()  # never written


def test_stage_reports_bad_human_file_with_its_line(tmp_path):
    protocol, store_path, run_dir = _stage_inputs(tmp_path, with_human=False,
                                                  with_fulltext=False)
    protocol.path.with_name("dry-needling-pf.extraction.csv").write_bytes(
        (FIXTURES / "extraction_bad.csv").read_bytes())
    with pytest.raises(InputError) as caught:
        extract(protocol, _store(store_path), Run(run_id="t", dir=run_dir, manifest={}))
    assert re.search(r"extraction\.csv:3: timepoint_weeks must be a number", str(caught.value))


# ------------------------------------------------------------------ against ../shared



def test_eval_script_exits_2_without_shared(tmp_path, capsys):
    module = load_script("eval_extract")
    assert module.main(["--shared", str(tmp_path / "shared")]) == 2
    assert "works_dev.jsonl: not found" in capsys.readouterr().err


@pytest.mark.shared
@pytest.mark.skipif(not WORKS.is_file(), reason=f"{WORKS} is absent (../shared not mounted)")
def test_evaluation_goals_on_works_dev(protocol):
    module = load_script("eval_extract")
    total, rows = module.evaluate(module.load_works(WORKS), protocol)
    rates = total.rates()
    assert len(rows) >= 9
    for name, goal in module.GOALS.items():
        assert rates[name] >= goal, (name, rates, total.misses)


@pytest.mark.shared
@pytest.mark.skipif(not WORKS.is_file(), reason=f"{WORKS} is absent (../shared not mounted)")
def test_spans_slice_back_on_every_corpus_abstract(protocol):
    for line in WORKS.read_text(encoding="utf-8").splitlines():
        work = json.loads(line)
        text = work.get("abstract") or ""
        _spans_slice_back(text, extract_from_text(text, source="abstract", protocol=protocol))


@pytest.mark.shared
@pytest.mark.skipif(not JATS_SAMPLES.is_dir(), reason=f"{JATS_SAMPLES} is absent")
def test_every_pmc_sample_parses_with_its_tables(protocol):
    files = sorted(JATS_SAMPLES.glob("*.nxml"))
    assert len(files) == 8
    for path in files:
        article = read_jats(path)
        raw = path.read_text(encoding="utf-8")
        assert len(article.tables) == len(re.findall(r"<table-wrap[\s>]", raw)), path.name
        assert article.pmcid and article.pmcid.startswith("PMC") and article.body
        for table in article.tables:
            assert table.rows and table.label
            for row in table.rows:
                for cell in row:
                    assert cell.source == f"pmc:{table.label} r{cell.row}c{cell.col}"
        extract_from_jats(path, protocol=protocol)  # not about dry needling: must not fail
    bjc = read_jats(JATS_SAMPLES / "6605965a.nxml").tables[0]
    assert (bjc.cell(2, 2).value.value, bjc.cell(2, 2).value.spread) == (57.4, 8.0)
    mds = read_jats(JATS_SAMPLES / "mds526.nxml").tables[1]
    cis = [c.value for r in mds.rows for c in r if c.value and c.value.kind == "ci"]
    assert (cis[0].value, cis[0].low, cis[0].high) == (0.93, 0.89, 0.98)
    lip = read_jats(JATS_SAMPLES / "pone.0046493.nxml").tables[1]
    assert any(c.value and c.value.kind == "mean_sd" and c.value.value == 0.12
               for r in lip.rows for c in r)
