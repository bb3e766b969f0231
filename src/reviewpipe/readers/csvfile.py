"""CSV exports (one record per row, a header row first) -> ``Record``."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ..errors import InputError
from ..records import (
    Record,
    clean_text,
    content_hash,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
    parse_year,
)
from ._common import assign_ids, find_doi, fingerprint, read_text, registrations_in, source_name

DEFAULT_COLUMNS = ["id", "title", "authors", "journal", "year", "volume", "issue", "pages",
                   "doi", "pmid", "abstract"]
# Every field a column can be mapped to; list fields are split on ``list_separator``.
FIELDS = DEFAULT_COLUMNS + ["journal_iso", "pmcid", "language", "keywords",
                            "publication_types", "mesh", "registrations", "database"]
_LIST_FIELDS = {"authors", "keywords", "publication_types", "mesh"}
_PUBMED_URL = re.compile(r"(?:pubmed\.ncbi\.nlm\.nih\.gov/|/pubmed/)(\d+)")
# The csv default (128 KiB) rejects real cells such as a 7,000-author list; 64 MiB still
# stops a runaway unbalanced quote from swallowing a huge file silently.
_FIELD_LIMIT = 64 * 1024 * 1024
if csv.field_size_limit() < _FIELD_LIMIT:
    csv.field_size_limit(_FIELD_LIMIT)


def _columns(path: str, header: list[str], column_map: dict[str, str] | None) -> dict[str, int]:
    """Our field -> column index: defaults found in the header, overridden by ``column_map``."""
    position = {}
    for index, name in enumerate(header):
        position.setdefault(name, index)
    columns = {field: position[field] for field in DEFAULT_COLUMNS if field in position}
    for field, column in (column_map or {}).items():
        if field not in FIELDS:
            raise InputError(path, f"column_map: unknown field {field!r} "
                             f"(known: {', '.join(FIELDS)})")
        if column not in position:
            raise InputError(path, f"column {column!r} (mapped to {field!r}) is not in the "
                             "header", line=1)
        columns[field] = position[column]
    if "title" not in columns and "abstract" not in columns:
        raise InputError(path, "no 'title' or 'abstract' column; pass column_map "
                         f"(header: {', '.join(header[:20])})", line=1)
    return columns


def _pmid(value: str) -> str | None:
    pmid = normalize_pmid(value)
    if pmid is None and value:
        match = _PUBMED_URL.search(value)
        pmid = match.group(1) if match else None
    return pmid


def _record(values: dict[str, str], *, path: str, source: str, database: str | None,
            separator: str, index: int) -> Record:
    def items(field: str) -> list[str]:
        cell = values.get(field, "")
        parts = cell.split(separator) if separator else [cell]
        return [clean_text(v) for v in parts if clean_text(v)]

    title = clean_text(values.get("title"))
    abstract = clean_text(values.get("abstract"))
    doi_text = values.get("doi", "")
    pmcid = clean_text(values.get("pmcid"))
    return Record(
        record_id="",
        source=source,
        source_id="",
        database=database or clean_text(values.get("database")),
        file=path,
        pmid=_pmid(clean_text(values.get("pmid"))),
        pmcid=normalize_pmcid(pmcid) if re.fullmatch(r"(?:PMC)?\d+", pmcid, re.I) else None,
        doi=normalize_doi(doi_text) or find_doi(doi_text),
        title=title,
        abstract=abstract,
        authors=items("authors"),
        journal=clean_text(values.get("journal")) or None,
        journal_iso=clean_text(values.get("journal_iso")) or None,
        year=parse_year(values.get("year")),
        volume=clean_text(values.get("volume")) or None,
        issue=clean_text(values.get("issue")) or None,
        pages=clean_text(values.get("pages")) or None,
        language=clean_text(values.get("language")) or None,
        publication_types=items("publication_types"),
        mesh=items("mesh"),
        keywords=items("keywords"),
        registrations=registrations_in(values.get("registrations"), title, abstract),
        raw_file=path,
        raw_index=index,
    )


def read_csv(path: str | Path, *, column_map: dict[str, str] | None = None,
             source: str | None = None, database: str | None = None,
             list_separator: str = ";") -> list[Record]:
    """Records of a CSV file with a header row.

    Parameters
    ----------
    path
        UTF-8 CSV (BOM optional).
    column_map
        Our field name -> the file's column header, e.g. ``{"title": "Title"}``; fields not
        mapped are read from the default columns (``id, title, authors, journal, year, volume,
        issue, pages, doi, pmid, abstract``) when the header has them.
    source
        Source name for ``record_id``; defaults to the file stem.
    database
        Overrides a mapped ``database`` column.
    list_separator
        Separator inside list cells (authors, keywords, publication types, MeSH).

    Raises
    ------
    InputError
        A mapped column missing from the header, a malformed row (unbalanced quotes, wrong
        field count) or undecodable text, with the line where the row starts.
    """
    where = str(path)
    source = source or source_name(path)
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    records: list[Record] = []
    bases: list[str] = []
    prints: list[str] = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(where, f"malformed CSV row: {exc}", line=line) from exc
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if header is None:
            header = [name.strip() for name in row]
            columns = _columns(where, header, column_map)
            continue
        if len(row) != len(header):
            raise InputError(where, f"row has {len(row)} fields, the header has {len(header)}",
                             line=line)
        values = {field: row[index] for field, index in columns.items()}
        record = _record(values, path=where, source=source, database=database,
                         separator=list_separator, index=len(records))
        own_id = clean_text(values.get("id"))
        bases.append(own_id or content_hash(record.title, "; ".join(record.authors),
                                            record.year, record.journal))
        prints.append(fingerprint(row))
        records.append(record)
    assign_ids(records, bases, prints, source)
    return records
