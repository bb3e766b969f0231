"""MEDLINE/PubMed tagged text (``rettype=medline``, PubMed "Save > PubMed format", ``.nbib``).

Each record is a block of ``TAG - value`` lines (tag left-justified in four columns, then
``- ``) with indented continuation lines, starting with ``PMID-``; blank lines separate
records. The structure is checked here with line numbers; ``Bio.Medline.parse`` then turns each
checked block into a dict. (On its own it accepts any text at all, and crashes on a file that
starts with an indented line.)
"""

from __future__ import annotations

import re
from pathlib import Path

from Bio import Medline

from ..errors import InputError
from ..records import (
    Record,
    clean_text,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
    parse_year,
)
from ._common import (
    assign_ids,
    fingerprint,
    is_digits,
    parse_date_text,
    read_text,
    registrations_in,
    source_name,
    split_lines,
)

_TAG_LINE = re.compile(r"[A-Z][A-Z0-9]{0,3} *-(?: |$)")
_AID = re.compile(r"^(.*?)\s*\[(\w+)\]\s*$")
_REF_PMID = re.compile(r"PMID:\s*(\d+)")
# MEDLINE comment/correction tags -> the XML CommentsCorrections RefType they stand for.
_COMMENT_TAGS = {
    "CON": "CommentOn", "CIN": "CommentIn", "EIN": "ErratumIn", "EFR": "ErratumFor",
    "CRI": "CorrectedandRepublishedIn", "CRF": "CorrectedandRepublishedFrom",
    "PRIN": "PartialRetractionIn", "PROF": "PartialRetractionOf", "RPI": "RepublishedIn",
    "RPF": "RepublishedFrom", "RIN": "RetractionIn", "ROF": "RetractionOf", "UIN": "UpdateIn",
    "UOF": "UpdateOf", "SPIN": "SummaryForPatientsIn", "ORI": "OriginalReportIn",
    "ECI": "ExpressionOfConcernIn", "ECF": "ExpressionOfConcernFor",
}


def _blocks(path: str, text: str) -> list[tuple[int, list[str]]]:
    """Records as (first line number, normalised lines), checked line by line."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(split_lines(text), start=1):
        line = raw.rstrip()
        if not line.strip():
            if current:
                blocks.append((start, current))
                current = []
            continue
        if line[0] in " \t":
            if not current:
                raise InputError(path, "indented continuation line with no tag before it",
                                 line=number)
            # Bio.Medline expects exactly six spaces before continuation text.
            current.append("      " + line.strip())
            continue
        if len(line) < 5 or line[4] != "-" or not _TAG_LINE.match(line):
            raise InputError(path, f"not a MEDLINE line (expected 'TAG - value'): {line[:40]!r}",
                             line=number)
        if not current:
            if not line.startswith("PMID-"):
                raise InputError(path, "MEDLINE record does not start with 'PMID- '",
                                 line=number)
            if not is_digits(line[6:].strip()):
                raise InputError(path, f"bad PMID {line[6:].strip()!r}", line=number)
            start = number
        current.append(line)
    if current:
        blocks.append((start, current))
    return blocks


def _list(entry: dict, tag: str) -> list[str]:
    value = entry.get(tag)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [clean_text(v) for v in values if clean_text(v)]


def _one(entry: dict, tag: str) -> str | None:
    values = _list(entry, tag)
    return " ".join(values) if values else None


def _ids(entry: dict) -> dict[str, str]:
    """DOI/PMC/PII from ``AID`` and ``LID`` lines such as ``10.1186/x [doi]``."""
    ids: dict[str, str] = {}
    for value in _list(entry, "AID") + _list(entry, "LID"):
        match = _AID.match(value)
        if match and match.group(2) not in ids:
            ids[match.group(2)] = match.group(1)
    return ids


def _record(entry: dict, *, path: str, source: str, database: str, index: int) -> Record:
    pmid = normalize_pmid(_one(entry, "PMID")) or ""  # checked digits in _blocks
    title = _one(entry, "TI") or _one(entry, "TT") or ""
    abstract = _one(entry, "AB") or ""
    authors = _list(entry, "FAU") or _list(entry, "AU")
    authors += [a for a in _list(entry, "CN") if a not in authors]
    ids = _ids(entry)
    pmcid = _one(entry, "PMC") or ids.get("pmc") or ids.get("pmcid")
    comments: list[list[str]] = []
    for tag, ref_type in _COMMENT_TAGS.items():
        for value in _list(entry, tag):
            match = _REF_PMID.search(value)
            comments.append([ref_type, match.group(1) if match else value])
    date_published = _one(entry, "DP")
    entrez = _one(entry, "EDAT")
    languages = _list(entry, "LA")
    return Record(
        record_id="",
        source=source,
        source_id="",
        database=database,
        file=path,
        pmid=pmid,
        pmcid=normalize_pmcid(pmcid) if pmcid else None,
        doi=normalize_doi(ids.get("doi")),
        title=title,
        abstract=abstract,
        authors=authors,
        journal=_one(entry, "JT"),
        journal_iso=_one(entry, "TA"),
        year=parse_year(date_published),
        volume=_one(entry, "VI"),
        issue=_one(entry, "IP"),
        pages=_one(entry, "PG"),
        language=languages[0] if languages else None,
        publication_types=_list(entry, "PT"),
        # Descriptors only, as in the XML reader: "Neoplasms/*drug therapy" -> "Neoplasms".
        mesh=[m.split("/")[0].lstrip("*").strip() for m in _list(entry, "MH")],
        keywords=_list(entry, "OT"),
        registrations=registrations_in(*_list(entry, "SI"), title, abstract),
        comments_corrections=comments,
        entrez_date=parse_date_text(entrez),
        published_date=parse_date_text(date_published),
        raw_file=path,
        raw_index=index,
    )


def read_medline(path: str | Path, *, source: str = "pubmed",
                 database: str = "PubMed") -> list[Record]:
    """Records of a MEDLINE-format text file.

    Raises
    ------
    InputError
        Not MEDLINE text, not UTF-8, a record not starting with ``PMID-`` (with the line).
    """
    where = str(path)
    source = source or source_name(path)
    records: list[Record] = []
    prints: list[str] = []
    for index, (_start, lines) in enumerate(_blocks(where, read_text(path))):
        entry = next(Medline.parse(lines))
        records.append(_record(entry, path=where, source=source, database=database,
                               index=index))
        prints.append(fingerprint(lines))
    # A PMID exported twice (concatenated exports) must not give two records one id.
    assign_ids(records, [r.pmid or "" for r in records], prints, source)
    return records
