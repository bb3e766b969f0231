"""Exports for other tools: outcomes as XLSX, RIS of the included records, an ASReview CSV.

Every export is deterministic: the XLSX is rewritten with fixed timestamps inside the zip and in
its document properties, so the same run gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from typing import Any

FIXED_TIME = datetime(2000, 1, 1)
ASREVIEW_COLUMNS = ["record_id", "cluster_id", "title", "abstract", "authors", "year", "doi",
                    "pmid", "included", "decision", "reason"]
ASREVIEW_HEADER = ",".join(ASREVIEW_COLUMNS) + "\n"


def outcomes_xlsx(outcomes: list[dict[str, str]], studies: list[dict[str, str]],
                  effects: list[dict[str, str]]) -> bytes:
    """A workbook with one sheet each for studies, outcomes and pooled effects."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in (("studies", studies), ("outcomes", outcomes), ("effects", effects)):
        sheet = book.create_sheet(name)
        columns = list(rows[0]) if rows else ["(empty)"]
        sheet.append(columns)
        for row in rows:
            sheet.append([_cell(row.get(c, "")) for c in columns])
        sheet.freeze_panes = "A2"
    book.properties.created = book.properties.modified = FIXED_TIME
    book.properties.creator = "reviewpipe"
    buffer = io.BytesIO()
    book.save(buffer)
    return _fixed_zip(buffer.getvalue())


def included_ris(records: list[dict[str, Any]]) -> str:
    """RIS of the included clusters' canonical records (ID = cluster id)."""
    return "\n".join(map(ris_entry, records))


def ris_entry(record: dict[str, Any]) -> str:
    """One record's entry of :func:`included_ris` (entries are joined by a blank line)."""
    lines = ["TY  - JOUR", f"ID  - {record['cluster_id']}"]
    for tag, key in (("TI", "title"), ("JO", "journal"), ("J2", "journal_iso"),
                     ("PY", "year"), ("VL", "volume"), ("IS", "issue"), ("DO", "doi"),
                     ("AN", "pmid"), ("C2", "pmcid"), ("LA", "language"),
                     ("AB", "abstract")):
        value = record.get(key)
        if value:
            lines.append(f"{tag}  - {_one_line(value)}")
    lines.extend(f"AU  - {_one_line(a)}" for a in record.get("authors") or [])
    pages = (record.get("pages") or "").split("-", 1)
    if pages[0]:
        lines.append(f"SP  - {pages[0]}")
    if len(pages) == 2 and pages[1]:
        lines.append(f"EP  - {pages[1]}")
    lines.extend(f"N1  - Registration: {r}" for r in record.get("registrations") or [])
    lines.append("ER  - ")
    lines.append("")
    return "\n".join(lines)


def ris_entries(text: str) -> dict[str, str] | None:
    """``cluster_id -> entry`` of an :func:`included_ris` text; None if it is not one.

    No value spans lines (each is put on one line), so a blank line only ever ends an entry.
    """
    entries = text[:-1].split("\n\n") if text else []
    out = {}
    for entry in entries:
        lines = entry.split("\n", 2)
        if len(lines) < 3 or lines[0] != "TY  - JOUR" or not lines[1].startswith("ID  - "):
            return None
        out[lines[1][6:]] = entry + "\n"
    return out if "\n".join(out.values()) == text else None


def asreview_csv(canonical: list[dict[str, Any]], screening: list[dict[str, str]]) -> str:
    """Screened records with labels as ASReview reads them: included 1, excluded 0, blank for
    records still waiting for a human."""
    decision = {s["cluster_id"]: s for s in screening}
    return "".join([ASREVIEW_HEADER, *asreview_lines(
        canonical, [decision[record["cluster_id"]] for record in canonical])])


def asreview_lines(canonical: list[dict[str, Any]], screening: list[dict[str, str]]
                   ) -> list[str]:
    """The rows of :func:`asreview_csv` for canonical records and their screening rows (in
    the same order), each with its line end."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ASREVIEW_COLUMNS, lineterminator="\n")
    out = []
    for record, row in zip(canonical, screening, strict=True):
        label = {"include": "1", "exclude": "0"}.get(row["decision"], "")
        writer.writerow({
            "record_id": record["record_ids"][0], "cluster_id": record["cluster_id"],
            "title": record.get("title") or "", "abstract": record.get("abstract") or "",
            "authors": "; ".join(record.get("authors") or []), "year": record.get("year") or "",
            "doi": record.get("doi") or "", "pmid": record.get("pmid") or "",
            "included": label, "decision": row["decision"], "reason": row["reason"]})
        out.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    return out


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every member's timestamp fixed (openpyxl stamps the current time)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                # openpyxl stamps "modified" with the clock when it saves.
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z",
                              data)
            target.writestr(fixed, data)
    return out.getvalue()


def _cell(value: str) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in str(value) else number


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())
