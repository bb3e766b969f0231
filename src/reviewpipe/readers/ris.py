"""RIS exports (PubMed/Zotero, EndNote, Embase, Scopus, Web of Science, Ovid, ProQuest, Rayyan).

Lines are tokenised with rispy's tag grammar (``XX  - value``); the record structure is checked
here, line by line, because rispy silently drops what it cannot place (a record after a BOM,
a last record with no ``ER``) and cannot say on which line a file went wrong.

Tolerated, because real exports do it: a UTF-8 BOM (also mid-file, where EndNote concatenates
exports), ``\\r\\n``, blank lines, text between records (Ovid's ``1.`` counters and link
footers), unknown tags, and untagged continuation lines (multi-line ``KW``/``N1``/``AB``).
Refused with the line number: no ``TY  -`` at all, binary or non-UTF-8 data, a ``TY`` inside an
open record, an ``ER`` with no open record, and a file that ends inside a record.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from rispy import RisParser

from ..errors import InputError
from ..records import (
    Record,
    clean_text,
    content_hash,
    normalize_doi,
    normalize_pmcid,
    parse_year,
)
from ._common import (
    assign_ids,
    find_doi,
    fingerprint,
    parse_date_text,
    read_text,
    registrations_in,
    source_name,
    split_lines,
)

_TAG_PARSER = RisParser()
_PMCID = re.compile(r"PMC\d+", re.IGNORECASE)
_PMID = re.compile(r"[0-9]{1,8}")
# "Registration: NCT01234567" notes (the snapshot's N1); the number is kept even when
# find_registrations does not know its registry (UMIN, jRCT, ...).
_REGISTRATION_NOTE = re.compile(
    r"^\s*(?:trial\s+)?registration(?:\s+(?:number|no\.?|id))?\s*:\s*([^\s,;]+)", re.I)
_DOI_FALLBACK_TAGS = ("UR", "L1", "L2", "L3", "L4", "LK", "M3")
_JOURNAL_TAGS = ("JF", "T2", "JO", "JA", "J2")


class _Line(NamedTuple):
    tag: str
    value: str
    line: int
    continued: bool = False  # an untagged line carried on from the tag before it


def _tokens(path: str, text: str) -> list[tuple[int, list[_Line]]]:
    """Records as (line of ``TY``, tagged lines), with structural errors raised by line."""
    records: list[tuple[int, list[_Line]]] = []
    current: list[_Line] | None = None
    start = 0
    last_tag: str | None = None
    lines = split_lines(text)
    for number, raw in enumerate(lines, start=1):
        # EndNote concatenations leave a BOM at the start of later records too.
        line = raw.lstrip("\ufeff")
        tag, value = _TAG_PARSER.parse_line(line)
        if current is None:
            if tag == "TY":
                current, start, last_tag = [_Line("TY", value, number)], number, "TY"
            elif tag == "ER":
                raise InputError(path, "'ER  -' with no open record (missing 'TY  -'?)",
                                 line=number)
            # Anything else between records is export decoration (Ovid counters, footers).
            continue
        if tag == "TY":
            raise InputError(path, f"'TY  -' inside the record opened at line {start} "
                             "(missing 'ER  -')", line=number)
        if tag == "ER":
            records.append((start, current))
            current, last_tag = None, None
        elif tag is not None:
            current.append(_Line(tag, value, number))
            last_tag = tag
        elif value and last_tag is not None:
            # Untagged line: a continuation of the previous tag (multi-line KW, N1, AB).
            current.append(_Line(last_tag, value, number, continued=True))
    if current is not None:
        raise InputError(path, f"file ends inside the record opened at line {start} "
                         "(no 'ER  -')", line=len(lines))
    if not records and text.strip():
        raise InputError(path, "not a RIS file: no 'TY  -' line", line=1)
    return records


def _values(lines: list[_Line], *tags: str) -> list[str]:
    wanted = set(tags)
    return [item.value for item in lines if item.tag in wanted and item.value]


def _first(lines: list[_Line], *tags: str) -> str | None:
    """The first occurrence of the first of ``tags`` present, with its continuation lines.

    A repeated tag is not appended: Ovid repeats ``DO``, Embase lists ``DB  - Embase`` then
    ``DB  - Medline`` (the first names the database the export came from).
    """
    for tag in tags:
        for start, item in enumerate(lines):
            if item.tag != tag or item.continued:
                continue
            parts = [item.value]
            for follower in lines[start + 1:]:
                if not (follower.continued and follower.tag == tag):
                    break
                parts.append(follower.value)
            text = clean_text(" ".join(parts))
            if text:
                return text
    return None


def _joined(lines: list[_Line], *tags: str) -> str | None:
    """All values of the first of ``tags`` present, joined (abstract paragraphs)."""
    for tag in tags:
        text = clean_text(" ".join(_values(lines, tag)))
        if text:
            return text
    return None


def _pages(lines: list[_Line]) -> str | None:
    start, end = _first(lines, "SP"), _first(lines, "EP")
    pages = f"{start}-{end}" if start and end and "-" not in start else (start or end)
    # Ovid writes "SP - No / EP - Specified" for unknown pages.
    if not pages or not any(ch.isdigit() for ch in pages):
        return None
    return pages


def _year_and_date(lines: list[_Line]) -> tuple[int | None, str | None]:
    """Year: the first PY/Y1/DA value holding one. Date: the most precise one of that year."""
    values = _values(lines, "PY") + _values(lines, "Y1") + _values(lines, "DA")
    year = next((y for y in map(parse_year, values) if y is not None), None)
    if year is None:
        return None, None
    dates = [d for d in map(parse_date_text, values) if d and d.startswith(str(year))]
    return year, max(dates, key=len, default=None)


def _registrations(notes: list[str], title: str, abstract: str) -> list[str]:
    found: list[str] = []
    for note in notes:
        match = _REGISTRATION_NOTE.match(note)
        if match:
            number = match.group(1).rstrip(".")
            known = registrations_in(number)
            found.extend(n for n in (known or [number]) if n not in found)
    found.extend(n for n in registrations_in(title, abstract, *notes) if n not in found)
    return found


def _record(lines: list[_Line], *, path: str, source: str, database: str | None,
            index: int) -> Record:
    title = _first(lines, "TI", "T1", "ST") or ""
    abstract = _joined(lines, "AB", "N2") or ""
    authors = [clean_text(v) for v in _values(lines, "AU", "A1")]
    notes = [clean_text(v) for v in _values(lines, "N1")]
    type_code = (_first(lines, "TY") or "").upper()
    # One type per M3 line, or several on one line joined by "; " (as the snapshot writes).
    publication_types = [clean_text(t) for v in _values(lines, "M3") for t in v.split(";")]
    if type_code == "DBASE" and "Registry Record" not in publication_types:
        publication_types.append("Registry Record")
    doi = normalize_doi(_first(lines, "DO"))
    if doi is None:
        doi = find_doi(*(_values(lines, "DO") + _values(lines, *_DOI_FALLBACK_TAGS)))
    accession = _first(lines, "AN")
    pmcid = _first(lines, "C2")
    year, published = _year_and_date(lines)
    keywords = [clean_text(v) for v in _values(lines, "KW")]
    return Record(
        record_id="",
        source=source,
        source_id="",
        database=database or _first(lines, "DB") or "",
        file=path,
        pmid=accession if accession and _PMID.fullmatch(accession) else None,
        pmcid=normalize_pmcid(pmcid) if pmcid and _PMCID.fullmatch(pmcid) else None,
        doi=doi,
        title=title,
        abstract=abstract,
        authors=[a for a in authors if a],
        journal=_first(lines, *_JOURNAL_TAGS),
        journal_iso=_first(lines, "J2", "JA"),
        year=year,
        volume=_first(lines, "VL"),
        issue=_first(lines, "IS"),
        pages=_pages(lines),
        language=_first(lines, "LA"),
        publication_types=[p for p in publication_types if p],
        keywords=[k for k in keywords if k],
        registrations=_registrations(notes, title, abstract),
        published_date=published,
        raw_file=path,
        raw_index=index,
    )


def read_ris(path: str | Path, *, source: str | None = None,
             database: str | None = None) -> list[Record]:
    """Records of a RIS file.

    Parameters
    ----------
    path
        RIS file (UTF-8, optional BOM; gzip is undone).
    source
        Source name for ``record_id``; defaults to the file stem.
    database
        Overrides each record's ``DB`` field.

    Returns
    -------
    list of Record
        ``source_id`` is the record's ``ID`` when it has one, else a hash of title, authors,
        year and journal; ids that repeat in the file get ``-2``, ``-3``… in content order.

    Raises
    ------
    InputError
        Not RIS, not UTF-8, or broken record structure (with the line).
    """
    where = str(path)
    source = source or source_name(path)
    records: list[Record] = []
    bases: list[str] = []
    prints: list[str] = []
    for index, (_start, lines) in enumerate(_tokens(where, read_text(path))):
        record = _record(lines, path=where, source=source, database=database, index=index)
        own_id = _first(lines, "ID")
        bases.append(own_id or content_hash(record.title, "; ".join(record.authors),
                                            record.year, record.journal))
        prints.append(fingerprint([(item.tag, item.value) for item in lines]))
        records.append(record)
    assign_ids(records, bases, prints, source)
    return records
