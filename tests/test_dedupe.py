"""Dedupe: normalisers, declared rules, the review queue, stable ids, the merge log, any-file
dedupe and the perturbation generator. Needs no ../shared except the tests marked ``shared``."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REVIEW, SHARED, load_script
from reviewpipe.cli import cli
from reviewpipe.clustering import cluster_records
from reviewpipe.dedupe import DECISION_COLUMNS, read_answers
from reviewpipe.errors import InputError
from reviewpipe.normalize import (
    author_keys,
    doi_versions,
    first_page,
    journals_match,
    normalize_pages,
    normalize_title,
    normalize_volume,
    pages_agree,
    parse_author,
    title_flags,
    title_variants,
)
from reviewpipe.perturb import PERTURBATIONS, make_duplicates, perturb_record
from reviewpipe.records import Record

FIXTURES = Path(__file__).parent / "fixtures" / "dedupe"


def record(rid: str, **fields: object) -> Record:
    source, _, source_id = rid.partition(":")
    return Record(record_id=rid, source=source, source_id=source_id, **fields)  # type: ignore[arg-type]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


COTCHETT = dict(
    title="Effectiveness of trigger point dry needling for plantar heel pain: a randomized "
          "controlled trial.",
    authors=["Cotchett, Matthew P", "Munteanu, Shannon E", "Landorf, Karl B"],
    journal="Physical therapy", journal_iso="Phys Ther", year=2014, volume="94", issue="8",
    pages="1083-94")


# ---------------------------------------------------------------- normalisation

@pytest.mark.parametrize(("raw", "expected"), [
    ("<i>Dry</i> needling: a <sup>randomised</sup> trial.", "dry needling a randomised trial"),
    ("Électro-acupuncture et aiguilles sèches", "electro acupuncture et aiguilles seches"),
    ("MÃ©todo de punciÃ³n seca", "metodo de puncion seca"),  # UTF-8 read as Latin-1
    ("Sørensen's test of heel pain", "sorensen s test of heel pain"),
    ("[Dry needling for heel pain]. [Spanish]", "dry needling for heel pain"),
    ("Dry needling for heel pain. [Review] [33 refs]", "dry needling for heel pain"),
    ("Dry needling for heel pain.[Erratum appears in Phys Ther. 2015;95(1):10]",
     "dry needling for heel pain"),
    ("Dry needling for heel pain.[Erratum appears in Phys Ther. 20", "dry needling for heel pain"),
    ("Dry needling for heel pain [Punción seca para el dolor de talón].",
     "dry needling for heel pain"),
    ("Dry needling for heel pain.", "dry needling for heel pain"),
    ("DRY NEEDLING FOR HEEL PAIN", "dry needling for heel pain"),
    ("Dry needling &amp; heel pain", "dry needling heel pain"),
])
def test_title_normalisation(raw: str, expected: str) -> None:
    assert normalize_title(raw) == expected


def test_bracketed_and_bilingual_titles_keep_the_other_language_as_a_variant() -> None:
    assert title_variants("Dry needling for heel pain [Punción seca para el dolor de talón]") == (
        "dry needling for heel pain", "puncion seca para el dolor de talon")
    both = title_variants("Utilidad de la punción seca en la fascitis plantar; "
                          "Usefulness of dry needling in plantar fasciitis")
    assert "usefulness of dry needling in plantar fasciitis" in both


def test_publication_type_flags_ignore_database_notes() -> None:
    assert title_flags("Heel pain trial.[Erratum appears in Phys Ther. 2015]") == frozenset()
    assert title_flags("Erratum: Heel pain trial") == {"erratum"}
    assert title_flags("Heel pain trial (vol 94, pg 1083, 2014)") == {"erratum"}
    assert title_flags("Dry needling for heel pain: study protocol for a trial") == {"protocol"}


@pytest.mark.parametrize("name", ["Cotchett MP", "Matthew P. Cotchett", "Cotchett, M. P.",
                                  "Cotchett, Matthew P", "M. P. Cotchett", "Cotchett M.P."])
def test_author_formats_give_one_key(name: str) -> None:
    assert parse_author(name) == ("cotchett", "mp")


def test_author_keys_drop_et_al_repeats_and_fold_names() -> None:
    assert author_keys(["Cotchett MP", "Munteanu SE", "et al."]) == [
        ("cotchett", "mp"), ("munteanu", "se")]
    # Some pages print the author list twice.
    assert len(author_keys(["Cotchett, M", "Landorf, K", "Cotchett, M", "Landorf, K"])) == 2
    assert parse_author("Sørensen, P. G.") == parse_author("Sorensen PG") == ("sorensen", "pg")
    assert parse_author("van Kemenade, F J")[0] == "vankemenade"


@pytest.mark.parametrize(("a", "b", "same"), [
    ("New England Journal of Medicine", "N Engl J Med", True),
    ("Physical therapy", "Phys Ther", True),
    ("Proceedings of the National Academy of Sciences of the United States of America",
     "Proc Natl Acad Sci U S A", True),
    ("Journal of clinical oncology : official journal of the American Society of Clinical "
     "Oncology", "J Clin Oncol", True),
    ("Annales Francaises d Anesthesie et de Reanimation", "Ann Fr Anesth Reanim", True),
    ("Obstetrics and Gynecology", "Obstetrics & Gynecology", True),
    ("CMAJ", "Canadian Medical Association Journal", True),
    ("Stroke (00392499)", "Stroke; a journal of cerebral circulation", True),
    ("Chest", "Heart Surgery Forum", False),
    ("Journal of Digital Studies", "Workshop of Digital Studies", False),
    ("Cancer Prevention Research", "Clinical Cancer Research", False),
])
def test_journal_full_name_vs_iso_abbreviation(a: str, b: str, same: bool) -> None:
    assert journals_match(a, b) is same
    assert journals_match(b, a) is same


def test_pages_volumes_and_doi_versions() -> None:
    assert normalize_pages("123-9") == normalize_pages("123-129") == "123-129"
    assert normalize_pages("1083–94") == "1083-1094"
    assert first_page("e12724") == "e12724"
    assert pages_agree("123-129", "123") and not pages_agree("123-129", "123-130")
    assert normalize_volume("4 (1) (no pagination)") == "4"
    assert normalize_volume("(Jul)") == ""
    assert doi_versions("10.1002/14651858.cd002273.pub2", "10.1002/14651858.cd002273.pub3")
    assert not doi_versions("10.24251/hicss.2021.510", "10.24251/hicss.2022.544")


# ---------------------------------------------------------------- rules

def test_exact_keys_join_records_whatever_their_titles() -> None:
    records = [
        record("a:1", title="Dry needling trial", pmid="24700136"),
        record("b:1", title="Uploaded by a clinic: heel study", pmid="24700136"),
        record("a:2", title="Heel pain and needles", doi="10.2522/ptj.20130255"),
        record("b:2", title="PTJ article page", doi="10.2522/ptj.20130255"),
        record("a:3", title="Plantar heel pain", pmcid="PMC4040426"),
        record("b:3", title="Heel pain, full text", pmcid="PMC4040426"),
    ]
    result = cluster_records(records)
    for n in "123":
        assert result.cluster_of[f"a:{n}"] == result.cluster_of[f"b:{n}"]
    assert {m["rule"] for m in result.merges} == {"exact:pmid", "exact:doi", "exact:pmcid"}
    assert len(set(result.cluster_of.values())) == 3


def test_one_doi_on_two_different_papers_goes_to_a_human() -> None:
    doi = "10.17705/1cais.04204"
    records = [
        record("a:1", title="Understanding information privacy assimilation in IT "
                            "organizations", authors=["Attili, V. S. Prakash"], year=2018,
               doi=doi),
        record("b:1", title="MISunderstood: a longitudinal analysis of major misperceptions",
               authors=["Annabi, Hala"], year=2019, doi=doi),
    ]
    result = cluster_records(records)
    assert result.cluster_of["a:1"] != result.cluster_of["b:1"]
    assert [q["reason"] for q in result.queue] == ["same DOI, different title and authors"]


def test_one_article_in_two_export_formats_is_merged_and_logged() -> None:
    pubmed = record("pubmed:24700136", pmid="24700136", doi="10.2522/ptj.20130255",
                    **COTCHETT)
    embase = record("embase:E1", title=COTCHETT["title"].upper().rstrip("."),  # type: ignore[union-attr]
                    authors=["Cotchett M.P.", "Munteanu S.E.", "Landorf K.B."],
                    journal="Physical Therapy", year=2014, volume="94", pages="1083-1094")
    result = cluster_records([pubmed, embase])
    assert result.cluster_of[pubmed.record_id] == result.cluster_of[embase.record_id]
    [merge] = result.merges
    assert merge["rule"] == "fuzzy:title>=95"
    assert merge["title"] == 100.0 and merge["first_author"] is True
    assert merge["journal"] is True and merge["page"] is True and merge["year_gap"] == 0


def test_same_title_in_two_journals_is_queued_not_merged() -> None:
    base = dict(title="Indwelling pleural catheters reduced hospital days in malignant "
                      "pleural effusion", authors=["Fysh, E.", "Geelhoed, E."], year=2011)
    records = [record("a:1", journal="Respirology", volume="16", **base),
               record("b:1", journal="Chest", volume="140", **base)]
    result = cluster_records(records)
    assert result.cluster_of["a:1"] != result.cluster_of["b:1"]
    [row] = result.queue
    assert row["reason"] == "journals differ; volumes differ" and row["title"] == 100.0


def test_translated_title_is_merged_by_its_citation() -> None:
    citation = dict(authors=["Train, M.", "Soulard, D.", "Bouyer, L."], year=1994, volume="13",
                    pages="280-284")
    records = [
        record("a:1", title="Antibiotic prophylaxis in pulmonary surgery. A controlled "
                            "double-blind study of amoxicillin versus cefamandole",
               journal="Ann Fr Anesth Reanim", **citation),
        record("b:1", title="[Comparison of amoxicillin and cefamandole in the prevention of "
                            "bronchopulmonary infections in pulmonary surgery]",
               journal="Annales Francaises d'Anesthesie et de Reanimation", **citation),
    ]
    result = cluster_records(records)
    assert result.cluster_of["a:1"] == result.cluster_of["b:1"]
    assert result.merges[0]["rule"] == "fuzzy:citation"


def test_later_paper_with_a_longer_title_is_not_merged() -> None:
    venue = dict(authors=["Vaishnav, Lakshika", "Goel, Sanjay"],
                 journal="Americas Conference on Information Systems")
    records = [
        record("a:1", title="The impact of cognitive load on responses to security alerts",
               year=2024, **venue),
        record("b:1", title="The impact of cognitive load on responses to security alerts: "
                            "investigating human errors", year=2025, **venue),
    ]
    result = cluster_records(records)
    assert result.cluster_of["a:1"] != result.cluster_of["b:1"]


def test_protocol_and_results_of_one_trial_are_one_study_not_one_cluster() -> None:
    trial = dict(authors=["Cotchett, Matthew P"], registrations=["ACTRN12610000611022"])
    records = [
        record("a:1", title="Dry needling for plantar heel pain: protocol for a randomised "
                            "controlled trial", journal="J Foot Ankle Res", year=2010, **trial),
        record("b:1", **{**COTCHETT, **trial}),
    ]
    result = cluster_records(records)
    protocol, paper = result.cluster_of["a:1"], result.cluster_of["b:1"]
    assert protocol != paper
    assert result.study_of[protocol] == result.study_of[paper]
    assert {(s["cluster_id"], s["registration"]) for s in result.study_links} == {
        (protocol, "ACTRN12610000611022"), (paper, "ACTRN12610000611022")}


# ---------------------------------------------------------------- ids, answers

def _mixed_records() -> list[Record]:
    records, _ = make_duplicates(_originals(30), 90, random_state=3)
    return records


def test_cluster_ids_are_stable_across_runs_and_input_orders() -> None:
    records = _mixed_records()
    first = cluster_records(records)
    assert cluster_records(records).cluster_of == first.cluster_of
    shuffled = list(records)
    random.Random(0).shuffle(shuffled)
    again = cluster_records(shuffled)
    assert again.cluster_of == first.cluster_of
    assert again.merges == first.merges and again.queue == first.queue


def test_previous_ids_survive_a_new_record() -> None:
    records = [record("a:1", **COTCHETT)]
    first = cluster_records(records).cluster_of
    renamed = {"a:1": "Cold"}
    grown = cluster_records([*records, record("b:1", **COTCHETT)], previous=renamed)
    assert grown.cluster_of == {"a:1": "Cold", "b:1": "Cold"}
    assert first["a:1"].startswith("C")


def test_reviewer_answers_override_the_rules() -> None:
    same_title = dict(title="Dry needling in chronic heel pain: results of a pilot trial",
                      authors=["Rastegar, S."], year=2017)
    records = [record("a:1", journal="Chest", **same_title),
               record("b:1", journal="Respirology", **same_title),
               record("c:1", **COTCHETT), record("d:1", **COTCHETT)]
    plain = cluster_records(records)
    assert plain.cluster_of["a:1"] != plain.cluster_of["b:1"]
    assert plain.cluster_of["c:1"] == plain.cluster_of["d:1"]
    assert [(q["record_a"], q["record_b"]) for q in plain.queue] == [("a:1", "b:1")]
    answered = cluster_records(records, answers={frozenset(("a:1", "b:1")): "same",
                                                 frozenset(("c:1", "d:1")): "different"})
    assert answered.cluster_of["a:1"] == answered.cluster_of["b:1"]
    assert answered.cluster_of["c:1"] != answered.cluster_of["d:1"]
    assert answered.queue == []  # answered pairs are not asked again
    assert [m["rule"] for m in answered.merges] == ["reviewer:same"]


def test_read_answers_skips_blank_rows_and_names_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.dedupe.csv"
    path.write_text("record_a,record_b,answer,reviewer\na:1,b:1,Same,AB\nc:1,d:1,,\n",
                    encoding="utf-8")
    assert read_answers(path) == {frozenset(("a:1", "b:1")): "same"}
    path.write_text("record_a,record_b,answer\na:1,b:1,maybe\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.dedupe\.csv:2: answer must be"):
        read_answers(path)
    assert DECISION_COLUMNS[:3] == ["record_a", "record_b", "answer"]


# ---------------------------------------------------------------- the real CLI

def _dedupe_run(project: Path) -> Path:
    runner = CliRunner()
    searched = runner.invoke(cli, ["search", "--review", REVIEW, "--root", str(project)])
    assert searched.exit_code == 0, searched.output
    done = runner.invoke(cli, ["dedupe", "--review", REVIEW, "--root", str(project)])
    assert done.exit_code == 0, done.output
    return Path(done.stdout.strip().splitlines()[-1])


def test_cli_queue_answers_and_stable_ids_across_runs(project: Path) -> None:
    first = _dedupe_run(project)
    queue = rows(first / "dedupe_review.csv")
    assert queue and {"record_a", "record_b", "answer", "reason", "title"} <= set(queue[0])
    merged = next(m for m in rows(first / "merge_log.csv") if m["rule"] == "exact:abstract")
    answers = project / "queries" / f"{REVIEW}.dedupe.csv"
    with answers.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(queue[0]))
        writer.writeheader()
        writer.writerow({**queue[0], "answer": "same"})
        writer.writerow({**{k: "" for k in queue[0]}, "record_a": merged["record_a"],
                         "record_b": merged["record_b"], "answer": "different"})

    second = _dedupe_run(project)
    clusters = {r["record_id"]: r["cluster_id"] for r in rows(second / "clusters.csv")}
    assert clusters[queue[0]["record_a"]] == clusters[queue[0]["record_b"]]
    assert clusters[merged["record_a"]] != clusters[merged["record_b"]]
    log = rows(second / "merge_log.csv")
    assert {"record_a": queue[0]["record_a"], "record_b": queue[0]["record_b"],
            "rule": "reviewer:same"}.items() <= next(
        m for m in log if m["rule"] == "reviewer:same").items()
    asked = {(q["record_a"], q["record_b"]) for q in rows(second / "dedupe_review.csv")}
    assert (queue[0]["record_a"], queue[0]["record_b"]) not in asked

    third = _dedupe_run(project)  # nothing changed: the same clusters under the same ids
    assert rows(third / "clusters.csv") == rows(second / "clusters.csv")


def test_cli_merge_log_explains_every_merge(project: Path) -> None:
    run = _dedupe_run(project)
    clusters = rows(run / "clusters.csv")
    log = rows(run / "merge_log.csv")
    sizes: dict[str, int] = {}
    for row in clusters:
        sizes[row["cluster_id"]] = sizes.get(row["cluster_id"], 0) + 1
    # A spanning tree per cluster: one logged merge for each record beyond the first.
    assert len(log) == sum(n - 1 for n in sizes.values())
    cluster_of = {r["record_id"]: r["cluster_id"] for r in clusters}
    for merge in log:
        assert cluster_of[merge["record_a"]] == cluster_of[merge["record_b"]]
        assert merge["rule"].split(":")[0] in ("exact", "fuzzy", "reviewer")
        if merge["rule"].startswith("exact:"):
            assert merge["key"], merge
        else:
            assert merge["title"], merge  # a fuzzy merge carries its scores


def test_cli_dedupes_any_files(tmp_path: Path) -> None:
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(cli, ["dedupe", "--input", str(FIXTURES / "a.ris"),
                                      "--input", str(FIXTURES / "b.csv"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    cluster = {(r["file"].rsplit("/", 1)[-1], r["record_id"]): r["cluster_id"]
               for r in rows(out)}
    assert set(cluster) == {("a.ris", "E1"), ("a.ris", "E2"), ("a.ris", "E3"),
                            ("b.csv", "S1"), ("b.csv", "S2"), ("b.csv", "S3")}
    assert cluster[("a.ris", "E1")] == cluster[("b.csv", "S1")]  # ISO vs full journal, 94 vs 1094
    assert cluster[("a.ris", "E2")] == cluster[("b.csv", "S2")]  # markup, [Spanish], 12-8
    assert len({cluster[("a.ris", "E3")], cluster[("a.ris", "E1")], cluster[("b.csv", "S3")],
                cluster[("a.ris", "E2")]}) == 4  # the protocol stays apart


def test_cli_input_takes_several_files_after_one_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dedupe", "--input", str(FIXTURES / "a.ris"),
                                      str(FIXTURES / "b.csv")])
    assert result.exit_code == 0, result.output
    files = {line.rsplit(",", 1)[-1] for line in result.stdout.splitlines()[1:]}
    assert files == {str(FIXTURES / "a.ris"), str(FIXTURES / "b.csv")}


# ---------------------------------------------------------------- the generator

DRUGS = ("dry needling", "acupuncture", "shockwave therapy", "night splints", "orthoses",
         "corticosteroid injection", "stretching", "taping", "laser therapy", "massage")
GROUPS = ("runners", "older adults", "people with diabetes", "military recruits",
          "office workers", "athletes")


def _originals(n: int) -> list[Record]:
    rng = random.Random(n)
    out = []
    for k in range(n):
        drug, group = DRUGS[k % len(DRUGS)], GROUPS[(k // len(DRUGS)) % len(GROUPS)]
        start = rng.randint(10, 900)
        out.append(record(
            f"pubmed:{1000 + k}", pmid=str(1000 + k), doi=f"10.1000/test.{k}",
            title=f"Effect of {drug} on plantar heel pain in {group}: trial number {k}.",
            authors=[f"{rng.choice(['Smith', 'Nguyen', 'Garcia', 'Okafor'])}{k}, Anna B",
                     "Landorf, Karl B"],
            journal="Journal of Foot and Ankle Research", journal_iso="J Foot Ankle Res",
            year=2000 + k % 20, volume=str(k), pages=f"{start}-{start + 9}",
            abstract=f"Background: {drug} for heel pain in {group}. " * 12))
    return out


def test_generator_is_seeded_and_documented() -> None:
    originals = _originals(20)
    one, truth_one = make_duplicates(originals, 60, random_state=7)
    two, truth_two = make_duplicates(originals, 60, random_state=7)
    assert [r.to_json() for r in one] == [r.to_json() for r in two] and truth_one == truth_two
    other, _ = make_duplicates(originals, 60, random_state=8)
    assert [r.to_json() for r in other] != [r.to_json() for r in one]
    assert len(one) == 60 and len(set(truth_one)) == 60
    assert {r.record_id for r in one if r.source == "pubmed"} <= {r.record_id for r in originals}
    copies = [r for r in one if r.source == "copy"]
    assert copies and all(truth_one[c.record_id] == c.source_id.split("-")[0] for c in copies)
    assert set(PERTURBATIONS) >= {"doi", "typo", "year", "pages", "journal", "et_al"}


def test_perturb_record_leaves_the_original_alone() -> None:
    original = _originals(1)[0]
    before = original.to_json()
    copies = [perturb_record(original, seed, copy=seed + 1) for seed in range(40)]
    assert original.to_json() == before
    assert {c.record_id for c in copies} == {f"copy:1000-{k}" for k in range(1, 41)}
    assert any(c.doi is None for c in copies) and any(c.year != original.year for c in copies)
    assert any(c.journal == "J Foot Ankle Res" for c in copies)
    assert any(c.pages == f"{original.pages.split('-')[0]}-{original.pages[-1]}"  # type: ignore[union-attr]
               or "\u2013" in (c.pages or "") for c in copies)


def test_generated_duplicates_are_found() -> None:
    records, truth = make_duplicates(_originals(40), 160, random_state=0)
    result = cluster_records(records)
    found = {(a.record_id, b.record_id) for a in records for b in records
             if a.record_id < b.record_id
             and result.cluster_of[a.record_id] == result.cluster_of[b.record_id]}
    true = {(a.record_id, b.record_id) for a in records for b in records
            if a.record_id < b.record_id and truth[a.record_id] == truth[b.record_id]}
    assert found <= true  # no false merge
    assert len(found) / len(true) >= 0.97


# ---------------------------------------------------------------- ../shared


@pytest.mark.shared
def test_bundled_review_clusters_match_corpus_work_ids() -> None:
    score = load_script("eval_dedupe").corpus_score(SHARED)
    assert score.true_pairs == 195
    assert score.f1 == 1.0


@pytest.mark.shared
def test_bib_dedupe_benchmark_levels() -> None:
    evaluate = load_script("eval_dedupe")
    bench = SHARED / "datasets" / "bib_dedupe_benchmark"
    scores = {name: evaluate.bib_score(bench / name) for name in evaluate.BIB_SETS}
    for name in ("stroke", "respiratory", "cytology_screening", "special_cases"):
        assert scores[name].f1 >= 0.99, name  # the issue's goal
        assert scores[name].false_pct <= 0.1, name
    # Measured, below the goal: Rathbone's labels merge errata notices, replies and
    # re-titled registry entries with their originals; the rules keep those apart.
    assert scores["haematology"].false_merges == 0
    assert scores["haematology"].f1 >= 0.90
    cases, wrong = evaluate.pairwise_cases(bench / "pairwise_test_cases.json")
    assert wrong == [] and cases.f1 == 1.0
