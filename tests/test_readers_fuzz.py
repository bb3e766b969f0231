"""Property tests: any input, however mangled, is either read or refused with InputError."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st

from reviewpipe.errors import InputError
from reviewpipe.readers import read_records
from reviewpipe.readers._common import may_hold_registration
from reviewpipe.records import Record, find_registrations

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
# (fixture, format, suffix): valid seeds that the mutations start from.
SEEDS = [
    ("records.ris", "ris", ".ris"),
    ("duplicates.ris", "ris", ".ris"),
    ("records.nbib", "medline", ".nbib"),
    ("default.csv", "csv", ".csv"),
    ("pubmed_articles.xml", "pubmed-xml", ".xml"),
    ("pubmed_book.xml", "pubmed-xml", ".xml"),
]
SETTINGS = settings(max_examples=60, deadline=timedelta(seconds=3), derandomize=True)
# Characters that trip naive parsers: digits int() rejects, BOMs, odd line breaks, quotes.
TRICKY = st.sampled_from(["²", "１", "٣", "\ufeff", "\r", "\u2028", "\x0b", "\"", ",", "<", "&",
                          "-", "  - ", "\t", "é", "NCT01234567", "PMC1", "10.1/x", "PMID- ",
                          "TY  - ", "ER  - "])
TEXT = st.lists(st.one_of(st.text(max_size=8), TRICKY), max_size=6).map("".join)


def outcome(data: bytes, fmt: str | None, suffix: str) -> list[Record] | InputError:
    """Write ``data`` to a temp file and read it; anything but Records/InputError fails."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            records = read_records(path, source="fuzz", format=fmt)
        except InputError as error:
            assert error.path == str(path)
            return error
    assert isinstance(records, list)
    assert all(isinstance(r, Record) for r in records)
    if fmt in ("ris", "csv", "medline"):
        assert len({r.record_id for r in records}) == len(records)
    return records


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str, str]:
    name, fmt, suffix = draw(st.sampled_from(SEEDS))
    data = bytearray((FIXTURES / name).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "drop", "dup", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            lines = bytes(data).split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            if op == "drop":
                del lines[index]
            else:
                lines.insert(index, lines[index])
            data = bytearray(b"\n".join(lines))
    return bytes(data), fmt, suffix


@SETTINGS
@given(mutated(), st.booleans())
def test_mutated_inputs_read_or_refused(case: tuple[bytes, str, str], sniff: bool) -> None:
    data, fmt, suffix = case
    outcome(data, None if sniff else fmt, suffix)


@SETTINGS
@given(mutated())
def test_mutated_gzip_inputs_read_or_refused(case: tuple[bytes, str, str]) -> None:
    data, fmt, suffix = case
    packed = gzip.compress(data)
    outcome(packed, fmt, suffix + ".gz")
    outcome(packed[: len(packed) // 2], fmt, suffix + ".gz")


@SETTINGS
@given(st.binary(max_size=600), st.sampled_from(SEEDS))
def test_random_bytes_read_or_refused(data: bytes, seed: tuple[str, str, str]) -> None:
    _name, fmt, suffix = seed
    outcome(data, fmt, suffix)


RIS_TAGS = ["TY", "ER", "TI", "T1", "ST", "AU", "A1", "PY", "Y1", "DA", "SP", "EP", "DO", "UR",
            "AN", "C2", "ID", "DB", "M3", "N1", "KW", "AB", "JO", "J2", "XX"]


@SETTINGS
@given(st.lists(st.one_of(st.tuples(st.sampled_from(RIS_TAGS), TEXT), TEXT), max_size=25))
def test_random_ris_lines(lines: list) -> None:
    text = "\n".join(f"{item[0]}  - {item[1]}" if isinstance(item, tuple) else item
                     for item in lines)
    outcome(text.encode("utf-8", "surrogatepass"), "ris", ".ris")


MEDLINE_TAGS = ["PMID", "TI", "AB", "FAU", "AU", "CN", "DP", "AID", "LID", "PMC", "SI", "EDAT",
                "CIN", "RIN", "MH", "OT", "PT", "LA", "VI", "IP", "PG", "JT", "TA"]


@SETTINGS
@given(st.lists(st.one_of(st.tuples(st.sampled_from(MEDLINE_TAGS), TEXT),
                          TEXT.map(lambda t: "      " + t), st.just("")), max_size=25))
def test_random_medline_lines(lines: list) -> None:
    text = "\n".join(f"{item[0]:<4}- {item[1]}" if isinstance(item, tuple) else item
                     for item in lines)
    outcome(text.encode("utf-8", "surrogatepass"), "medline", ".nbib")


CSV_FIELDS = ["id", "title", "authors", "journal", "year", "volume", "issue", "pages", "doi",
              "pmid", "abstract"]


@SETTINGS
@given(st.lists(st.sampled_from(CSV_FIELDS), min_size=1, max_size=6),
       st.lists(st.lists(TEXT, max_size=7), max_size=6))
def test_random_csv_rows(header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    outcome(buffer.getvalue().encode("utf-8", "surrogatepass"), "csv", ".csv")


XML_LEAVES = ["PMID", "Year", "Month", "Day", "MedlineDate", "ArticleTitle", "Volume",
              "MedlinePgn", "LastName", "ForeName", "CollectiveName", "Language", "Keyword"]


@st.composite
def pubmed_xml(draw: st.DrawFn) -> bytes:
    def leaf(tag: str) -> str:
        return f"<{tag}>{escape(draw(TEXT))}</{tag}>"

    articles = []
    for _ in range(draw(st.integers(0, 3))):
        pmid = draw(st.one_of(st.from_regex(r"[0-9]{1,8}", fullmatch=True), TEXT))
        version = draw(st.sampled_from(["1", "2", "", "x"]))
        date = "".join(leaf(t) for t in draw(st.lists(
            st.sampled_from(["Year", "Month", "Day", "MedlineDate"]), max_size=3)))
        authors = "".join(f"<Author ValidYN=\"{draw(st.sampled_from('YN'))}\">"
                          + "".join(leaf(t) for t in draw(st.lists(st.sampled_from(
                              ["LastName", "ForeName", "Initials", "CollectiveName"]),
                              max_size=3))) + "</Author>" for _ in range(draw(st.integers(0, 2))))
        extra = "".join(leaf(t) for t in draw(st.lists(st.sampled_from(XML_LEAVES), max_size=4)))
        articles.append(
            f"<PubmedArticle><MedlineCitation><PMID Version=\"{version}\">{escape(pmid)}</PMID>"
            f"<Article><Journal><JournalIssue><PubDate>{date}</PubDate></JournalIssue></Journal>"
            f"{leaf('ArticleTitle')}<AuthorList>{authors}</AuthorList>{extra}</Article>"
            "</MedlineCitation><PubmedData><History><PubMedPubDate PubStatus=\"entrez\">"
            f"{date}</PubMedPubDate></History></PubmedData></PubmedArticle>")
    root = draw(st.sampled_from(["PubmedArticleSet", "MedlineCitationSet", "eSearchResult"]))
    return f"<{root}>{''.join(articles)}</{root}>".encode("utf-8", "surrogatepass")


@SETTINGS
@given(pubmed_xml())
def test_random_pubmed_xml(data: bytes) -> None:
    outcome(data, "pubmed-xml", ".xml")


@settings(max_examples=200, deadline=timedelta(seconds=1), derandomize=True)
@given(st.lists(st.one_of(st.text(max_size=6), st.sampled_from(
    ["NCT01234567", "nct01234567", "ISRCTN12345678", "ACTRN12610000611022", "CRD42019123456",
     "ChiCTR-IOR-17012345", "RBR-abc123", "JPRN-UMIN000012345", "NTR1234", "(", " ", "-", "_"])),
    max_size=8).map("".join))
def test_registration_prefilter_never_misses(text: str) -> None:
    if find_registrations(text):
        assert may_hold_registration(text)
