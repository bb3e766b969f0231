"""Tests for the bundled offline snapshot ``data/snapshots/dry-needling-pf``.

Most tests read only the committed files, so they run on a fresh clone. Tests marked
``shared`` rebuild from ``../shared/corpus`` and skip when it is absent.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import rispy
from Bio import Entrez

from reviewpipe import snapshot
from reviewpipe.errors import InputError
from reviewpipe.snapshot_pubmed import split_abstract, split_author

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "data" / "snapshots" / "dry-needling-pf"
SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus" / "records.jsonl"
RIS_NAMES = ["publisher-pmc.ris", "registries.ris", "indexes-mirrors.ris"]
DATA_FILES = ["pubmed.xml", *RIS_NAMES]
ALL_FILES = [*DATA_FILES, "README.md"]
RIS_TAGS = {"TY", "ID", "DB", "UR", "TI", "AU", "JO", "T2", "PY", "VL", "IS", "SP", "EP", "DO",
            "AN", "C2", "LA", "M3", "N1", "AB", "ER"}
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
DOCTYPE = ('<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN"'
           ' "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')

no_shared = pytest.mark.skipif(not CORPUS.is_file(), reason="../shared/corpus is absent")


def _readme() -> str:
    return (SNAPSHOT / "README.md").read_text(encoding="utf-8")


def _manifest() -> dict[str, tuple[int, str]]:
    """File → (records, sha256) from the README's manifest table."""
    rows = re.findall(r"^\| (\S+) \| (\d+) \| `([0-9a-f]{64})` \|$", _readme(), re.M)
    return {name: (int(count), digest) for name, count, digest in rows}


def _readme_pmids() -> dict[str, str]:
    """PMID → corpus rec_id from the README's Entrez-date table."""
    return dict(re.findall(r"^\| (\d+) \| (R\d+) \| ", _readme(), re.M))


def _read_pubmed(path: Path = SNAPSHOT / "pubmed.xml"):
    with path.open("rb") as handle:
        return Entrez.read(handle, validate=True)


def _load_ris(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return rispy.load(handle)


def _article_rows(parsed) -> list[dict]:
    return [a["MedlineCitation"] for a in parsed["PubmedArticle"]]


# ------------------------------------------------------------------ committed snapshot


def test_committed_files_exist():
    for name in ALL_FILES:
        assert (SNAPSHOT / name).is_file(), name


def test_readme_manifest_matches_files():
    manifest = _manifest()
    assert sorted(manifest) == sorted(DATA_FILES)
    for name, (_, digest) in manifest.items():
        assert hashlib.sha256((SNAPSHOT / name).read_bytes()).hexdigest() == digest, name
    assert manifest["pubmed.xml"][0] == len(_read_pubmed()["PubmedArticle"])
    for name in RIS_NAMES:
        assert manifest[name][0] == len(_load_ris(SNAPSHOT / name)), name


def test_pubmed_xml_validates_against_bundled_dtd():
    etree = pytest.importorskip("lxml.etree")
    dtd_path = Path(Entrez.__file__).parent / "DTDs" / "pubmed_250101.dtd"
    dtd = etree.DTD(str(dtd_path))
    parser = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False)
    tree = etree.parse(str(SNAPSHOT / "pubmed.xml"), parser)
    assert dtd.validate(tree), dtd.error_log.filter_from_errors()
    assert tree.docinfo.doctype == DOCTYPE


def test_pubmed_xml_header_and_encoding():
    data = (SNAPSHOT / "pubmed.xml").read_bytes()
    lines = data.decode("utf-8").split("\n")
    assert lines[:2] == [XML_DECLARATION, DOCTYPE]
    assert b"\r" not in data and data.endswith(b"\n")


def test_entrez_read_validates_offline():
    citations = _article_rows(_read_pubmed())
    pmids = [str(c["PMID"]) for c in citations]
    assert len(pmids) == 27
    assert pmids == sorted(pmids, key=int) and len(set(pmids)) == len(pmids)
    for citation in citations:
        article = citation["Article"]
        assert str(article["ArticleTitle"]).strip()
        assert article["Abstract"]["AbstractText"]
        assert article["Language"] and article["PublicationTypeList"]


def test_pubmed_history_has_entrez_dates_and_ids():
    parsed = _read_pubmed()
    readme = _readme()
    for article in parsed["PubmedArticle"]:
        pmid = str(article["MedlineCitation"]["PMID"])
        data = article["PubmedData"]
        statuses = {d.attributes["PubStatus"]: d for d in data["History"]}
        assert set(statuses) == {"pubmed", "medline", "entrez"}
        entrez = statuses["entrez"]
        date = f"{entrez['Year']}-{int(entrez['Month']):02d}-{int(entrez['Day']):02d}"
        assert re.search(rf"^\| {pmid} \| R\d+ \| \S+ \| {date} \|", readme, re.M), pmid
        ids = {i.attributes["IdType"]: str(i) for i in data["ArticleIdList"]}
        assert ids["pubmed"] == pmid


def test_pubmed_structured_abstracts_and_registrations():
    by_pmid = {str(c["PMID"]): c["Article"] for c in _article_rows(_read_pubmed())}
    labels = [t.attributes.get("Label") for t in by_pmid["24700136"]["Abstract"]["AbstractText"]]
    assert labels == ["Background", "Objective", "Methods", "Results", "Conclusions"]
    # A sentence that happens to contain a colon stays inside its section.
    results = [str(t) for t in by_pmid["29119296"]["Abstract"]["AbstractText"]
               if t.attributes.get("Label") == "Results"]
    assert "Steroid injection lowered pain faster:" in results[0]
    bank = by_pmid["30889250"]["DataBankList"][0]
    assert bank["DataBankName"] == "ClinicalTrials.gov"
    assert list(bank["AccessionNumberList"]) == ["NCT02698072"]


def test_ris_files_load_with_rispy():
    seen: Counter[str] = Counter()
    for name in RIS_NAMES:
        entries = _load_ris(SNAPSHOT / name)
        assert entries, name
        ids = [e.get("id") for e in entries]
        assert all(ids) and ids == sorted(ids), name
        seen.update(ids)
        for entry in entries:
            assert "unknown_tag" not in entry, entry["id"]
            assert entry["type_of_reference"] and entry["name_of_database"]
            assert len(entry["urls"]) >= 1 and entry["abstract"]
            if "title" in entry:
                assert entry["title"].strip()
    assert all(n == 1 for n in seen.values())


def test_ris_lines_are_well_formed():
    for name in RIS_NAMES:
        data = (SNAPSHOT / name).read_bytes()
        assert b"\r" not in data and data.endswith(b"ER  - \n"), name
        for line in data.decode("utf-8").split("\n"):
            if line:
                tag = re.match(r"^([A-Z][A-Z0-9])  - ", line)
                assert tag and tag.group(1) in RIS_TAGS, (name, line[:40])


def test_registry_records_are_in_registries_file():
    for name in RIS_NAMES:
        for entry in _load_ris(SNAPSHOT / name):
            if entry.get("type_of_work") == "Registry Record":
                assert name == "registries.ris", entry["id"]
                assert entry["type_of_reference"] == "DBASE"


def test_every_record_once_across_files():
    ris_ids = [e["id"] for name in RIS_NAMES for e in _load_ris(SNAPSHOT / name)]
    pubmed_ids = list(_readme_pmids().values())
    assert sorted(_readme_pmids()) == sorted(
        str(c["PMID"]) for c in _article_rows(_read_pubmed()))
    everything = ris_ids + pubmed_ids
    assert len(everything) == len(set(everything))
    total = int(re.search(r"(\d+) records, one per page version", _readme()).group(1))
    assert len(everything) == total


def test_no_labels_leak():
    for name in ALL_FILES:
        text = (SNAPSHOT / name).read_text(encoding="utf-8")
        for needle in ("work_id", "exclusion_reason", "eligible_for", "wrong_population",
                       "wrong_intervention", "duplicate_report", "rct_protocol",
                       "registry_entry"):
            assert needle not in text, (name, needle)
        assert not re.search(r"\bW\d{3}\b", text), name


# ------------------------------------------------------------------ builder on a tiny corpus


def _corpus_line(rec_id: str, url: str, **fields) -> str:
    record = {"rec_id": rec_id, "source_url": url, "title": f"Title {rec_id}",
              "authors": ["Matthew P. Cotchett"], "journal": "Phys Ther", "year": 2014,
              "volume": "94", "issue": "8", "pages": "1083-94", "doi": "10.2522/ptj.20130255",
              "pmid": None, "pmcid": None, "language": "en", "registration": None,
              "publication_types": ["Journal Article"],
              "abstract": "Background: One. Methods: Two; p: 3. Results: Three.",
              "work_id": "W999", "design": "rct", "eligible": "yes",
              "exclusion_reason": "none"}
    record.update(fields)
    return json.dumps(record)


def _tiny_corpus(path: Path) -> Path:
    lines = [
        _corpus_line("R1", "https://pmc.ncbi.nlm.nih.gov/articles/PMC1", pmid="24700136",
                     pmcid="PMC1"),
        _corpus_line("R2", "https://pubmed.ncbi.nlm.nih.gov/24700136/", pmid="24700136"),
        _corpus_line("R3", "https://read.qxmd.com/read/24700999", pmid="24700999", year=None),
        _corpus_line("R4", "https://trials.co/x/NCT00000001", registration="NCT00000001",
                     publication_types=["Registry Record"], authors=None, title=None),
        _corpus_line("R5", "http://10.0.0.1:8080/x", pages="O8"),
        _corpus_line("R6", "https://new-registry.example/x", publication_types=["Registry Record"]),
        _corpus_line("R7", "https://ichgcp.net/fr/clinical-trials-registry/publications/1-x"),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_build_on_tiny_corpus(tmp_path):
    corpus = _tiny_corpus(tmp_path / "records.jsonl")
    summary = snapshot.build_snapshot(corpus, tmp_path / "out")
    assert {k: v["records"] for k, v in summary.items()} == {
        "pubmed.xml": 2, "publisher-pmc.ris": 1, "registries.ris": 2, "indexes-mirrors.ris": 2}
    citations = _article_rows(_read_pubmed(tmp_path / "out" / "pubmed.xml"))
    assert [str(c["PMID"]) for c in citations] == ["24700136", "24700999"]
    # R2 is the PubMed page, so it wins over the lower rec_id R1 (which goes to the RIS).
    publisher = _load_ris(tmp_path / "out" / "publisher-pmc.ris")
    assert [e["id"] for e in publisher] == ["R1"]
    assert publisher[0]["accession_number"] == "24700136"
    assert publisher[0]["custom2"] == "PMC1"
    assert (publisher[0]["start_page"], publisher[0]["end_page"]) == ("1083", "94")
    author = citations[0]["Article"]["AuthorList"][0]
    assert (author["LastName"], author["ForeName"], author["Initials"]) == (
        "Cotchett", "Matthew P.", "MP")
    # No year on R3: PubDate has an empty MedlineDate, Entrez year borrowed from PMID-nearest.
    pub_date = citations[1]["Article"]["Journal"]["JournalIssue"]["PubDate"]
    assert pub_date == {"MedlineDate": ""}
    registries = {e["id"]: e for e in _load_ris(tmp_path / "out" / "registries.ris")}
    assert sorted(registries) == ["R4", "R6"]
    assert registries["R4"]["notes"] == ["Registration: NCT00000001"]
    assert "title" not in registries["R4"]
    mirrors = {e["id"]: e for e in _load_ris(tmp_path / "out" / "indexes-mirrors.ris")}
    assert sorted(mirrors) == ["R5", "R7"]
    assert mirrors["R5"]["start_page"] == "O8" and "end_page" not in mirrors["R5"]
    for name in ALL_FILES:
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "W999" not in text and "work_id" not in text


def test_build_is_deterministic(tmp_path):
    corpus = _tiny_corpus(tmp_path / "records.jsonl")
    first = snapshot.build_snapshot(corpus, tmp_path / "a")
    second = snapshot.build_snapshot(corpus, tmp_path / "b")
    assert first == second
    for name in ALL_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "not a JSON object"),
    ('["a list"]', "not a JSON object"),
    ('{"rec_id": "R9", "source_url": "https://x.org/", "abstract": "A.", '
     '"publication_types": [], "year": "2014"}', "'year' must be an integer"),
    ('{"rec_id": "R9", "abstract": "A.", "publication_types": []}', "'source_url'"),
])
def test_malformed_corpus_line_names_the_line(tmp_path, line, message):
    corpus = tmp_path / "records.jsonl"
    corpus.write_text(_corpus_line("R1", "https://x.org/") + "\n" + line + "\n",
                      encoding="utf-8")
    with pytest.raises(InputError) as info:
        snapshot.build_snapshot(corpus, tmp_path / "out")
    assert info.value.line == 2 and message in info.value.message
    assert not (tmp_path / "out").exists()


def test_duplicate_rec_id_is_an_input_error(tmp_path):
    corpus = tmp_path / "records.jsonl"
    line = _corpus_line("R1", "https://x.org/")
    corpus.write_text(f"{line}\n{line}\n", encoding="utf-8")
    with pytest.raises(InputError, match="duplicate rec_id"):
        snapshot.build_snapshot(corpus, tmp_path / "out")


def test_cli_reports_bad_input_in_one_line(tmp_path):
    corpus = tmp_path / "records.jsonl"
    corpus.write_text("{oops\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "reviewpipe.snapshot", "--corpus", str(corpus),
         "--out", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert f"{corpus}:1" in result.stderr


@pytest.mark.parametrize(("name", "expected"), [
    ("Matthew P. Cotchett", ("Cotchett", "Matthew P.", "MP")),
    ("Cotchett, Matthew P", ("Cotchett", "Matthew P", "MP")),
    ("Cotchett MP", ("Cotchett", "MP", "MP")),
    ("Marta San Antolín-Gil", ("San Antolín-Gil", "Marta", "M")),
    ("Tsui-Pik Yip", ("Yip", "Tsui-Pik", "TP")),
    ("Anitha", ("Anitha", None, None)),
])
def test_split_author(name, expected):
    assert split_author(name) == expected


def test_split_abstract_keeps_text_recoverable():
    text = "Background: A. Results: B: not a label. Conclusions: C."
    parts = split_abstract(text)
    assert [p[0] for p in parts] == ["Background", "Results", "Conclusions"]
    assert " ".join(f"{label}: {body}" for label, body in parts) == text
    assert split_abstract("No label here: at all.") == [
        (None, "No label here: at all.")]


# ------------------------------------------------------------------ against ../shared


@pytest.mark.shared
@no_shared
def test_rebuild_is_byte_identical_to_committed(tmp_path):
    summary = snapshot.build_snapshot(CORPUS, tmp_path)
    for name in ALL_FILES:
        assert (tmp_path / name).read_bytes() == (SNAPSHOT / name).read_bytes(), name
    assert {k: (v["records"], v["sha256"]) for k, v in summary.items()} == _manifest()


@pytest.mark.shared
@no_shared
def test_every_corpus_record_appears_exactly_once():
    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    placed = Counter(e["id"] for name in RIS_NAMES for e in _load_ris(SNAPSHOT / name))
    placed.update(_readme_pmids().values())
    assert placed == Counter(r["rec_id"] for r in records)
    by_id = {r["rec_id"]: r for r in records}
    for pmid, rec_id in _readme_pmids().items():
        assert by_id[rec_id]["pmid"] == pmid
    assert len(_readme_pmids()) == len({r["pmid"] for r in records if r["pmid"]})
