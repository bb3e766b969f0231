"""The one normalised record shape every source is read into, and its field normalisers."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any

# Columns of records.csv, in order. List fields are written as JSON arrays.
RECORD_COLUMNS = [
    "record_id", "source", "source_id", "database", "file", "pmid", "pmcid", "doi", "title",
    "abstract", "authors", "journal", "journal_iso", "year", "volume", "issue", "pages",
    "language", "publication_types", "mesh", "keywords", "registrations",
    "comments_corrections", "entrez_date", "published_date", "deleted", "raw_file",
    "raw_index",
]

_REGISTRATION = re.compile(
    r"\b(NCT\d{8}|ISRCTN\d{8}|ACTRN\d{14}|IRCT\d{6,}N\d+|IRCT\d{8,}|CTRI/\d{4}/\d+/\d+"
    r"|ChiCTR[-\w]*\d{6,}|DRKS\d{8}|CRD\d{11}|EUCTR[-\w]+|JPRN-\w+|KCT\d{7}|TCTR\d{11}"
    r"|PACTR\d{15}|RBR-\w+|NTR\d{3,5}|SLCTR/\d{4}/\d+)",
    re.IGNORECASE,
)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*|https?://doi\.org/)", re.I)
_DOI_SHAPE = re.compile(r"^10\.\d{4,9}/\S+$")


@dataclass
class Record:
    """One bibliographic record as read from one source.

    ``record_id`` is stable across reruns: ``<source>:<source_id>``, where ``source_id`` is the
    PMID for PubMed, the export's own id (RIS ``ID``, CSV ``id``) when it has one, and otherwise
    a hash of the record's content.
    """

    record_id: str
    source: str
    source_id: str
    database: str = ""
    file: str = ""
    pmid: str | None = None
    pmcid: str | None = None
    doi: str | None = None
    title: str = ""
    abstract: str = ""
    abstract_sections: list[list[str]] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    journal: str | None = None
    journal_iso: str | None = None
    year: int | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    language: str | None = None
    publication_types: list[str] = field(default_factory=list)
    mesh: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    registrations: list[str] = field(default_factory=list)
    comments_corrections: list[list[str]] = field(default_factory=list)
    entrez_date: str | None = None
    published_date: str | None = None
    deleted: bool = False
    raw_file: str | None = None
    raw_index: int | None = None

    def to_row(self) -> dict[str, Any]:
        """A flat dict for CSV/SQLite: lists as JSON, None as empty."""
        out: dict[str, Any] = {}
        for name in RECORD_COLUMNS:
            value = getattr(self, name)
            if isinstance(value, list):
                value = json.dumps(value, ensure_ascii=False)
            elif isinstance(value, bool):
                value = int(value)
            elif value is None:
                value = ""
            out[name] = value
        return out

    def to_json(self) -> str:
        # Fields hold only str, int, bool, None and lists of those: no deep copy is needed
        # (dataclasses.asdict's copy was most of the cost of writing 100k records).
        data = {name: getattr(self, name) for name in _field_names()}
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        names = _field_names()
        return cls(**{k: v for k, v in data.items() if k in names})


@lru_cache(maxsize=1)
def _field_names() -> frozenset[str]:
    return frozenset(f.name for f in fields(Record))


def normalize_doi(value: str | None) -> str | None:
    """Lower-case DOI without resolver prefix or ``doi:``; None when it is not DOI-shaped."""
    if not value:
        return None
    doi = _DOI_PREFIX.sub("", value.strip()).strip().rstrip(".").lower()
    doi = doi.replace("%2f", "/")
    return doi if _DOI_SHAPE.match(doi) else None


def normalize_pmid(value: Any) -> str | None:
    """Digits of a PMID as text, or None."""
    if value is None:
        return None
    text = str(value).strip()
    text = re.sub(r"^(?:pmid:?\s*)", "", text, flags=re.I)
    return text if text.isdigit() and text != "0" else None


def normalize_pmcid(value: Any) -> str | None:
    """``PMC`` followed by digits, or None."""
    if value is None:
        return None
    match = re.search(r"(?:PMC)?\s*(\d+)", str(value).strip(), flags=re.I)
    if not match or not str(value).strip():
        return None
    return f"PMC{match.group(1)}"


def parse_year(value: Any) -> int | None:
    """The first plausible four-digit year in a value (``2014``, ``2014 Aug``, ``2014/08/01``)."""
    if value is None:
        return None
    match = re.search(r"(1[89]\d\d|20\d\d)", str(value))
    return int(match.group(1)) if match else None


def find_registrations(*texts: str | None) -> list[str]:
    """Trial registration numbers (NCT, ISRCTN, ACTRN, IRCT, CTRI, ChiCTR, PROSPERO…)."""
    found: list[str] = []
    for text in texts:
        for match in _REGISTRATION.finditer(text or ""):
            number = match.group(1)
            if not number.startswith("ChiCTR"):
                number = number.upper()
            if number not in found:
                found.append(number)
    return found


def clean_text(value: Any) -> str:
    """Collapse whitespace and NFC-normalise; None becomes the empty string."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value))
    return re.sub(r"\s+", " ", text).strip()


def content_hash(*parts: Any, length: int = 12) -> str:
    """A short, order-independent-of-input SHA-1 over the given parts."""
    digest = hashlib.sha1("\x1f".join(clean_text(p) for p in parts).encode("utf-8"))
    return digest.hexdigest()[:length]


# A records.jsonl line's record_id as JSON wrote it (escapes kept); a key's quotes cannot occur
# unescaped inside a string value, so the first match is the key.
_JSON_RECORD_ID = re.compile(rb'"record_id": "((?:[^"\\]|\\.)*)"')


def line_record_id(line: bytes) -> str | None:
    """The record_id of a records.jsonl line without parsing the line (ids may hold quotes or
    backslashes, which JSON escapes)."""
    match = _JSON_RECORD_ID.search(line)
    if match is None:
        return None
    value = match.group(1)
    return json.loads(b'"' + value + b'"') if b"\\" in value else value.decode("utf-8")


def make_record_id(source: str, source_id: str) -> str:
    return f"{source}:{source_id}"
