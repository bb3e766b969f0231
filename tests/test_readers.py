"""Readers: every input format into Records, field by field, and every failure as InputError."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from reviewpipe.errors import InputError
from reviewpipe.readers import (
    FORMATS,
    iter_pubmed_xml,
    read_csv,
    read_medline,
    read_pubmed_xml,
    read_records,
    read_ris,
    sniff_format,
)
from reviewpipe.readers._common import REGISTRY_PREFIXES, may_hold_registration
from reviewpipe.readers.safexml import ENTITIES_REFUSED
from reviewpipe.records import _REGISTRATION, Record, find_registrations

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
PROJECT = Path(__file__).resolve().parents[1]
SNAPSHOT = PROJECT / "data" / "snapshots" / "dry-needling-pf"


def fixture(name: str) -> Path:
    return FIXTURES / name


def error_of(call, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return caught.value


# ----------------------------------------------------------------------------- PubMed XML


@pytest.fixture(scope="module")
def articles() -> list[Record]:
    return read_pubmed_xml(fixture("pubmed_articles.xml"))


def test_pubmed_xml_structured_article(articles: list[Record]) -> None:
    path = str(fixture("pubmed_articles.xml"))
    first = articles[0]
    assert first.record_id == "pubmed:31000001"
    assert (first.source, first.source_id, first.pmid) == ("pubmed", "31000001", "31000001")
    assert first.database == "PubMed"
    assert first.file == path and first.raw_file == path and first.raw_index == 0
    # From ArticleIdList, lower-cased; the ReferenceList's DOI must not leak in.
    assert first.doi == "10.1186/s13047-020-0001-x"
    assert first.pmcid == "PMC7000001"
    assert first.title == ("Dry needling of gastrocnemius trigger points with 102 needles and "
                           "p<0.05: a randomised trial.")
    assert first.abstract_sections == [
        ["BACKGROUND", "Plantar heel pain is common."],
        ["METHODS", "We randomised 84 adults (ISRCTN12345678) to dry needling or sham."],
        ["CONCLUSIONS", "Needling reduced pain."],
    ]
    assert first.abstract == (
        "BACKGROUND: Plantar heel pain is common. METHODS: We randomised 84 adults "
        "(ISRCTN12345678) to dry needling or sham. CONCLUSIONS: Needling reduced pain.")
    # ValidYN="N" dropped; no ForeName -> "Last Initials"; CollectiveName as is.
    assert first.authors == ["Cotchett, Matthew P", "Lee K", "Plantar Heel Pain Trial Group"]
    assert first.journal == "Journal of foot and ankle research"
    assert first.journal_iso == "J Foot Ankle Res"
    assert (first.year, first.volume, first.issue, first.pages) == (2020, "12", "3", "101-9")
    assert first.language == "eng"
    assert first.publication_types == ["Journal Article", "Randomized Controlled Trial"]
    assert first.mesh == ["Fasciitis, Plantar", "Humans"]
    assert first.keywords == ["dry needling", "plantar heel pain"]
    # DataBank trial registry first, GEO accession left out, then the abstract's number.
    assert first.registrations == ["NCT01234567", "ISRCTN12345678"]
    assert first.comments_corrections == [["CommentIn", "32000001"],
                                          ["ErratumIn", "J Foot Ankle Res. 2020 May;13(1):31"]]
    assert first.entrez_date == "2020-02-01"
    assert first.published_date == "2020-03-05"
    assert first.deleted is False


def test_pubmed_xml_medline_date_and_retraction(articles: list[Record]) -> None:
    second = articles[1]
    assert second.record_id == "pubmed:28000002"
    assert second.title == "[Not Available]."
    assert second.abstract == "An unstructured abstract spread over two lines."
    assert second.abstract_sections == []
    assert second.authors == ["García-López, María José"]
    assert second.doi == "10.5555/rf.2017.002"  # from ELocationID
    assert second.pmcid is None
    assert second.year == 2017 and second.published_date == "2017-11"
    assert second.journal_iso == "Rev Fisioter"  # MedlineTA when no ISOAbbreviation
    assert second.pages == "e123"
    assert second.comments_corrections == [["RetractionIn", "33000003"]]
    assert "Retracted Publication" in second.publication_types
    assert second.raw_index == 1


def test_pubmed_xml_delete_citation(articles: list[Record]) -> None:
    deleted = [r for r in articles if r.deleted]
    assert [(r.record_id, r.pmid, r.title, r.raw_index) for r in deleted] == [
        ("pubmed:11111111", "11111111", "", 2), ("pubmed:22222222", "22222222", "", 3)]
    assert len(articles) == 4


def test_pubmed_xml_gzip_and_iterator_agree(tmp_path: Path, articles: list[Record]) -> None:
    packed = tmp_path / "articles.xml.gz"
    packed.write_bytes(gzip.compress(fixture("pubmed_articles.xml").read_bytes()))
    from_gz = read_pubmed_xml(packed)
    assert [r.to_json().replace(str(packed), "F") for r in from_gz] == [
        r.to_json().replace(str(fixture("pubmed_articles.xml")), "F") for r in articles]
    assert [r.record_id for r in iter_pubmed_xml(packed)] == [r.record_id for r in articles]


def test_pubmed_xml_source_and_database_arguments() -> None:
    records = read_pubmed_xml(fixture("pubmed_articles.xml"), source="pm", database="MEDLINE")
    assert records[0].record_id == "pm:31000001"
    assert {r.database for r in records} == {"MEDLINE"}


def test_pubmed_book_article() -> None:
    (book,) = read_pubmed_xml(fixture("pubmed_book.xml"))
    assert book.record_id == "pubmed:29000004"
    assert book.title == "Plantar Fasciitis"
    assert book.journal == "StatPearls"
    assert book.authors == ["Buchanan, Benjamin K"]  # editors are not authors
    assert (book.year, book.published_date, book.entrez_date) == (2023, "2023-01", "2017-06-01")
    assert book.publication_types == ["Study Guide"]


def test_medline_citation_set() -> None:
    citation, deleted = read_pubmed_xml(fixture("medline_citation_set.xml"))
    assert citation.record_id == "pubmed:17000005"
    assert citation.doi == "10.3233/rnn-2007-00005"
    assert citation.entrez_date is None  # the old format has no PubmedData
    assert deleted.deleted and deleted.pmid == "26000006"


def test_versioned_pmids_get_distinct_ids(tmp_path: Path) -> None:
    path = tmp_path / "versions.xml"
    article = ("<PubmedArticle><MedlineCitation><PMID Version=\"{v}\">30271887</PMID>"
               "<Article><ArticleTitle>Version {v}</ArticleTitle></Article></MedlineCitation>"
               "</PubmedArticle>")
    path.write_text("<PubmedArticleSet>" + article.format(v=1) + article.format(v=2)
                    + "</PubmedArticleSet>")
    records = read_pubmed_xml(path)
    assert [r.record_id for r in records] == ["pubmed:30271887", "pubmed:30271887.v2"]
    assert {r.pmid for r in records} == {"30271887"}


@pytest.mark.parametrize("name", ["xxe.xml", "billion_laughs.xml", "xxe_parameter.xml"])
def test_entity_declarations_are_refused_fast(name: str) -> None:
    path = fixture(name)
    started = time.perf_counter()
    error = error_of(read_pubmed_xml, path)
    assert time.perf_counter() - started < 2
    assert error.message == ENTITIES_REFUSED
    assert error.message == ("refused: XML declares entities (possible XXE or entity-expansion "
                             "attack)")
    assert error.path == str(path) and str(path) in str(error)
    assert error.line == 3


def test_malformed_xml_names_the_line() -> None:
    error = error_of(read_pubmed_xml, fixture("malformed.xml"))
    assert (error.message, error.line) == ("malformed XML: mismatched tag", 7)
    assert str(error) == f"{fixture('malformed.xml')}:7: malformed XML: mismatched tag"


def test_truncated_xml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_bytes(fixture("pubmed_articles.xml").read_bytes()[:2000])
    error = error_of(read_pubmed_xml, path)
    assert error.message.startswith("malformed XML: ")
    assert error.line == fixture("pubmed_articles.xml").read_bytes()[:2000].count(b"\n") + 1


def test_empty_and_missing_xml(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    error = error_of(read_pubmed_xml, empty)
    assert (error.message, error.line) == ("malformed XML: no element found", 1)
    missing = error_of(read_pubmed_xml, tmp_path / "missing.xml")
    assert missing.message == "cannot read file: No such file or directory"
    folder = error_of(read_records, tmp_path, source="x", format="ris")
    assert folder.message == "cannot read file: a directory"
    nul = error_of(read_records, "a\x00b.ris", source="x")
    assert nul.message == "cannot read file: embedded null byte"
    fifo = tmp_path / "pipe.xml"
    os.mkfifo(fifo)  # reading a FIFO would block forever
    for fmt in FORMATS:
        error = error_of(read_records, fifo, source="x", format=fmt)
        assert error.message == "cannot read file: not a regular file"


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(gzip.compress(fixture("pubmed_articles.xml").read_bytes())[:300])
    error = error_of(read_pubmed_xml, path)
    assert error.message.startswith("corrupt gzip data: ")
    assert error.path == str(path)


def test_not_pubmed_and_ncbi_error_responses() -> None:
    error = error_of(read_pubmed_xml, fixture("esearch.xml"))
    assert error.message == "not a PubMed article set (root element eSearchResult)"
    error = error_of(read_pubmed_xml, fixture("esearch_error.xml"))
    assert error.message == "NCBI error response: Invalid query: unbalanced parentheses"
    assert error.path == str(fixture("esearch_error.xml"))


def test_article_without_pmid(tmp_path: Path) -> None:
    path = tmp_path / "nopmid.xml"
    path.write_text("<PubmedArticleSet><PubmedArticle><MedlineCitation><Article/>"
                    "</MedlineCitation></PubmedArticle></PubmedArticleSet>")
    error = error_of(read_pubmed_xml, path)
    assert (error.message, error.record) == ("article has no valid PMID ('')", 0)


def test_registration_prefilter_covers_every_registry() -> None:
    # Each alternative of records._REGISTRATION must start with one of the prefixes the
    # XML reader's fast pre-check looks for, or it would silently miss that registry.
    alternatives = _REGISTRATION.pattern.removeprefix(r"\b(").removesuffix(")").split("|")
    for alternative in alternatives:
        literal = re.match(r"[A-Za-z]+", alternative).group().upper()
        assert any(literal.startswith(p) for p in REGISTRY_PREFIXES), alternative
    assert may_hold_registration("see (nct01234567).")
    assert not may_hold_registration("a randomised controlled function test")
    assert find_registrations("a randomised controlled function test") == []


# ----------------------------------------------------------------------------- RIS


@pytest.fixture(scope="module")
def ris_records() -> list[Record]:
    return read_ris(fixture("records.ris"), source="export")


def test_ris_bom_crlf_and_tags(ris_records: list[Record]) -> None:
    first = ris_records[0]
    assert len(ris_records) == 4
    assert first.record_id == "export:R001" and first.source_id == "R001"
    assert first.database == "pmc.ncbi.nlm.nih.gov"
    assert first.file == str(fixture("records.ris")) and first.raw_index == 0
    assert first.title == ("Effectiveness of trigger point dry needling for plantar heel pain: "
                           "a randomised controlled trial")
    assert first.authors == ["Cotchett, Matthew P.", "Munteanu, Shannon E.", "Landorf, Karl B."]
    assert (first.journal, first.journal_iso) == ("Physical Therapy", "Phys Ther")
    assert (first.year, first.published_date) == (2014, "2014-08-01")
    assert (first.volume, first.issue, first.pages) == ("94", "8", "1083-94")
    assert first.doi == "10.2522/ptj.20130255"
    assert (first.pmid, first.pmcid) == ("24700136", "PMC4038619")
    assert first.language == "en"
    assert first.keywords == ["dry needling", "myofascial trigger points", "heel pain"]
    assert first.publication_types == ["Journal Article", "Randomized Controlled Trial"]
    assert first.registrations == ["ACTRN12610000611022"]
    assert first.abstract == ("Background: Dry needling is used to treat myofascial pain. "
                              "Methods: 84 participants were randomised.")


def test_ris_fallbacks_and_faulty_year(ris_records: list[Record]) -> None:
    second = ris_records[1]
    assert second.title == "Dry Needling em Fascite Plantar"  # T1
    assert second.authors == ["Cotchett, MP"]  # A1
    assert second.journal == "Fisioterapia em Movimento"  # JF
    assert second.year is None and second.published_date is None  # "PY  - 10 15"
    assert second.pages is None  # Ovid's "No" / "Specified"
    assert second.doi == "10.1590/fm.2014.027"  # percent-encoded inside UR
    assert second.pmid is None  # "rayyan-123456" is not a PMID
    assert second.database == ""
    assert re.fullmatch(r"export:[0-9a-f]{12}", second.record_id)


def test_ris_registry_and_empty_records(ris_records: list[Record]) -> None:
    registry, empty = ris_records[2], ris_records[3]
    assert registry.publication_types == ["Registry Record"]  # TY DBASE
    assert registry.registrations == ["NCT03236779"]
    assert (empty.record_id, empty.title, empty.abstract) == ("export:R099", "", "")


def test_ris_ids_do_not_depend_on_order(tmp_path: Path) -> None:
    blocks = [b.strip() for b in fixture("duplicates.ris").read_text().split("\n\n")]
    reversed_path = tmp_path / "duplicates.ris"
    reversed_path.write_text("\n\n".join(reversed(blocks)) + "\n")

    def ids_by_block(path: Path) -> dict[str, str]:
        text_blocks = path.read_text().strip().split("\n\n")
        return {text_blocks[r.raw_index].strip(): r.record_id
                for r in read_ris(path, source="d")}

    forward = ids_by_block(fixture("duplicates.ris"))
    assert len(set(forward.values())) == 3
    assert ids_by_block(reversed_path) == forward
    # The two "Same title" records differ only in N1: same hash, "-2" for one of them.
    same = sorted(v for k, v in forward.items() if "Same title" in k)
    assert same == [same[0], same[0] + "-2"]


@pytest.mark.parametrize(("name", "message", "line"), [
    ("truncated.ris", "file ends inside the record opened at line 5 (no 'ER  -')", 7),
    ("nested.ris", "'TY  -' inside the record opened at line 1 (missing 'ER  -')", 3),
    ("not_ris.ris", "not a RIS file: no 'TY  -' line", 1),
    ("stray_er.ris", "'ER  -' with no open record (missing 'TY  -'?)", 6),
])
def test_ris_structure_errors(name: str, message: str, line: int) -> None:
    error = error_of(read_ris, fixture(name))
    assert (error.message, error.line, error.path) == (message, line, str(fixture(name)))


def test_ris_binary_and_empty(tmp_path: Path) -> None:
    binary = tmp_path / "binary.ris"
    binary.write_bytes(b"TY  - JOUR\nTI  - x\n\x00\x01\x02ER  - \n")
    error = error_of(read_ris, binary)
    assert (error.message, error.line) == ("binary data (NUL byte), not a UTF-8 text file", 3)
    latin = tmp_path / "latin1.ris"
    latin.write_bytes("TY  - JOUR\nTI  - Caf\u00e9\nER  - \n".encode("latin-1"))
    error = error_of(read_ris, latin)
    assert (error.message, error.line) == (
        "not valid UTF-8 (byte 0xe9); re-export as UTF-8", 2)
    empty = tmp_path / "empty.ris"
    empty.write_text("\n\n")
    assert read_ris(empty) == []


@pytest.mark.parametrize("name", sorted(p.name for p in SNAPSHOT.glob("*.*")
                                        if p.suffix in (".ris", ".xml")) or ["(none)"])
def test_snapshot_files_read_with_manifest_counts(name: str) -> None:
    readme = SNAPSHOT / "README.md"
    if not readme.exists() or not (SNAPSHOT / name).exists():
        pytest.skip(f"snapshot {SNAPSHOT} is not built yet")
    counts = dict(re.findall(r"^\| (\S+\.(?:ris|xml)) \| (\d+) \|", readme.read_text(), re.M))
    records = read_records(SNAPSHOT / name, source=Path(name).stem)
    assert len(records) == int(counts[name])
    assert len({r.record_id for r in records}) == len(records)
    if name.endswith(".ris"):
        # The snapshot writes the corpus rec_id as ID and the page host as DB.
        assert all(re.fullmatch(r"R\d+", r.source_id) for r in records)
        assert all(r.database for r in records)
        for record in records:
            if record.pmid:
                assert record.pmid.isdigit()
            if record.pmcid:
                assert record.pmcid.startswith("PMC")


# ----------------------------------------------------------------------------- MEDLINE


def test_medline_fields() -> None:
    first, second = read_medline(fixture("records.nbib"))
    assert first.record_id == "pubmed:24700136" and first.database == "PubMed"
    assert first.title == ("Effectiveness of trigger point dry needling for plantar heel pain: "
                           "a randomized controlled trial.")
    assert first.abstract.startswith("BACKGROUND: Myofascial trigger points have been proposed")
    assert first.authors == ["Cotchett, Matthew P", "Munteanu, Shannon E",
                             "Heel Pain Study Group"]
    assert (first.journal, first.journal_iso) == ("Physical therapy", "Phys Ther")
    assert (first.year, first.published_date) == (2014, "2014-08")
    assert (first.volume, first.issue, first.pages) == ("94", "8", "1083-94")
    assert first.doi == "10.2522/ptj.20130255" and first.pmcid == "PMC4038619"
    assert first.language == "eng"
    assert first.publication_types == ["Journal Article", "Randomized Controlled Trial"]
    assert first.mesh == ["Adult", "Dry Needling", "Fasciitis, Plantar"]
    assert first.keywords == ["heel pain", "trigger points"]
    assert first.registrations == ["ACTRN12610000611022"]
    assert first.comments_corrections == [["CommentIn", "25085888"],
                                          ["ErratumIn", "Phys Ther. 2015 Jan;95(1):140"]]
    assert first.entrez_date == "2014-04-05"
    assert (second.record_id, second.published_date, second.raw_index) == (
        "pubmed:31502640", "2019-09-10", 1)
    assert second.authors == ["Smith J"]
    assert second.comments_corrections == [["RetractionIn", "31999999"]]


@pytest.mark.parametrize(("name", "message", "line"), [
    ("bad_start.nbib", "MEDLINE record does not start with 'PMID- '", 4),
    ("not_medline.nbib",
     "not a MEDLINE line (expected 'TAG - value'): 'this line is neither a tag nor a continu'", 3),
    ("records.ris", "not a MEDLINE line (expected 'TAG - value'): '1.'", 2),
])
def test_medline_errors(name: str, message: str, line: int) -> None:
    error = error_of(read_medline, fixture(name))
    assert (error.message, error.line) == (message, line)


# ----------------------------------------------------------------------------- CSV


def test_csv_default_columns() -> None:
    first, second = read_csv(fixture("default.csv"), source="sheet")
    assert first.record_id == "sheet:S1"
    assert first.title == "Dry needling, a trial"
    assert first.authors == ["Cotchett MP", "Munteanu SE"]
    assert (first.journal, first.year, first.volume, first.issue, first.pages) == (
        "Phys Ther", 2014, "94", "8", "1083-94")
    assert (first.doi, first.pmid) == ("10.2522/ptj.20130255", "24700136")
    assert first.abstract == "Background: one. Methods: two, with NCT01234567."
    assert first.registrations == ["NCT01234567"]
    assert re.fullmatch(r"sheet:[0-9a-f]{12}", second.record_id)
    assert (second.title, second.year, second.raw_index) == ("Untitled row without id", None, 1)


def test_csv_column_map() -> None:
    column_map = {"title": "Title", "authors": "Author Names", "year": "Source",
                  "abstract": "Abstract", "doi": "Open URL Link",
                  "registrations": "Clinical Trial Numbers"}
    (record,) = read_csv(fixture("embase_like.csv"), column_map=column_map, database="Embase")
    assert record.source == "embase_like" and record.database == "Embase"
    assert record.title == "Duplication cysts: diagnosis"
    assert record.authors == ["Liu R.", "Adler D.G."]
    assert record.year == 2014
    assert record.doi == "10.4103/2303-9027.138783"
    assert record.registrations == ["ISRCTN12345678"]


def test_csv_mapping_errors() -> None:
    error = error_of(read_csv, fixture("embase_like.csv"), column_map={"title": "Titel"})
    assert (error.message, error.line) == (
        "column 'Titel' (mapped to 'title') is not in the header", 1)
    error = error_of(read_csv, fixture("embase_like.csv"), column_map={"colour": "Title"})
    assert error.message.startswith("column_map: unknown field 'colour'")
    error = error_of(read_csv, fixture("embase_like.csv"))
    assert error.message.startswith("no 'title' or 'abstract' column; pass column_map")


@pytest.mark.parametrize(("name", "message", "line"), [
    ("unbalanced.csv", "malformed CSV row: unexpected end of data", 3),
    ("wrong_count.csv", "row has 4 fields, the header has 3", 4),
])
def test_csv_malformed_rows(name: str, message: str, line: int) -> None:
    error = error_of(read_csv, fixture(name))
    assert (error.message, error.line, error.path) == (message, line, str(fixture(name)))


def test_csv_encoding(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes(b"id,title\nA,fine\nB,caf\xe9\n")
    error = error_of(read_csv, path)
    assert (error.message, error.line) == ("not valid UTF-8 (byte 0xe9); re-export as UTF-8", 3)


# ----------------------------------------------------------------------------- dispatch


def test_formats_and_sniffing(tmp_path: Path) -> None:
    assert FORMATS == ["pubmed-xml", "ris", "medline", "csv"]
    assert sniff_format(fixture("pubmed_articles.xml")) == "pubmed-xml"
    assert sniff_format(fixture("records.ris")) == "ris"
    assert sniff_format(fixture("records.nbib")) == "medline"
    assert sniff_format(fixture("default.csv")) == "csv"
    for source, target in [("records.ris", "export.txt"), ("records.nbib", "pubmed.txt"),
                           ("pubmed_articles.xml", "fetch.dat")]:
        shutil.copy(fixture(source), tmp_path / target)
    assert sniff_format(tmp_path / "export.txt") == "ris"
    assert sniff_format(tmp_path / "pubmed.txt") == "medline"
    assert sniff_format(tmp_path / "fetch.dat") == "pubmed-xml"
    packed = tmp_path / "fetch.xml.gz"
    packed.write_bytes(gzip.compress(fixture("pubmed_articles.xml").read_bytes()))
    assert sniff_format(packed) == "pubmed-xml"
    (tmp_path / "notes.txt").write_text("just some notes\n")
    error = error_of(sniff_format, tmp_path / "notes.txt")
    assert error.message.startswith("cannot tell the file format")


def test_read_records_dispatch(tmp_path: Path) -> None:
    xml = read_records(fixture("pubmed_articles.xml"), source="pubmed")
    assert [r.record_id for r in xml][:2] == ["pubmed:31000001", "pubmed:28000002"]
    ris = read_records(fixture("records.ris"), source="export", database="Scopus")
    assert {r.database for r in ris} == {"Scopus"}  # the argument beats each record's DB
    assert read_records(fixture("records.ris"), source="export")[0].database == (
        "pmc.ncbi.nlm.nih.gov")
    medline = read_records(fixture("records.nbib"), source="pubmed")
    assert medline[0].database == "PubMed"
    rows = read_records(fixture("embase_like.csv"), source="embase",
                        column_map={"title": "Title"})
    assert rows[0].record_id.startswith("embase:")
    shutil.copy(fixture("records.ris"), tmp_path / "export.txt")
    assert len(read_records(tmp_path / "export.txt", source="x")) == 4
    assert str(fixture("records.ris")) == read_records(str(fixture("records.ris")),
                                                       source="x")[0].file
    error = error_of(read_records, fixture("records.ris"), source="x", format="bibtex")
    assert error.message == ("unknown format 'bibtex'; expected one of pubmed-xml, ris, "
                             "medline, csv")
    error = error_of(read_records, fixture("records.ris"), source="x", format="pubmed-xml")
    # Line 1 is the BOM and an empty line; the "1." counter on line 2 is not XML.
    assert (error.message, error.line) == ("malformed XML: syntax error", 2)


def test_ris_registration_notes(tmp_path: Path) -> None:
    path = tmp_path / "notes.ris"
    path.write_text("TY  - DBASE\nTI  - A registry entry (see NCT01234567)\n"
                    "N1  - Registration: UMIN000012345\nN1  - Registration: nct01234567.\n"
                    "ER  - \n")
    (record,) = read_ris(path)
    assert record.source == "notes"
    # The note's number first, kept as given when the registry shape is unknown.
    assert record.registrations == ["UMIN000012345", "NCT01234567"]
    assert record.publication_types == ["Registry Record"]


def test_medline_repeated_pmid_gets_distinct_ids(tmp_path: Path) -> None:
    path = tmp_path / "twice.nbib"
    path.write_text("PMID- 123\nTI  - One.\n\nPMID- 123\nTI  - One.\n")
    records = read_medline(path)
    assert [r.record_id for r in records] == ["pubmed:123", "pubmed:123-2"]
    assert {r.pmid for r in records} == {"123"}
