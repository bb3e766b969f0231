"""Write the RIS exports: one record per corpus version, fields as printed, nulls omitted."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from reviewpipe.snapshot_corpus import flat, registrations
from reviewpipe.snapshot_sources import source_host

__all__ = ["check_ris", "ris_file", "ris_record", "ris_type", "split_pages"]

RIS_TYPES = [("Registry Record", "DBASE"), ("Academic Dissertation", "THES"),
             ("Congress", "CONF"), ("Patient Education Handout", "ELEC")]


def split_pages(pages: str) -> tuple[str, str | None]:
    """``"1083-94"`` → ``("1083", "94")`` as printed (no expansion); one page → (page, None)."""
    parts = re.split(r"\s*[-\u2013]\s*", pages)
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    return pages, None


def ris_type(record: dict[str, Any]) -> str:
    for publication_type, ty in RIS_TYPES:
        if publication_type in record["publication_types"]:
            return ty
    return "JOUR"


def ris_record(record: dict[str, Any]) -> str:
    """One RIS record: fields as printed, nulls omitted, ``ID`` = rec_id."""
    lines: list[tuple[str, str]] = [
        ("TY", ris_type(record)), ("ID", record["rec_id"]),
        ("DB", source_host(record["source_url"])), ("UR", flat(record["source_url"])),
    ]
    lines.append(("TI", flat(record.get("title"))))
    lines += [("AU", flat(a)) for a in record.get("authors") or []]
    journal = flat(record.get("journal"))
    lines += [("JO", journal), ("T2", journal)]
    year = record.get("year")
    lines += [("PY", "" if year is None else str(year)), ("VL", flat(record.get("volume"))),
              ("IS", flat(record.get("issue")))]
    pages = flat(record.get("pages"))
    if pages:
        start, end = split_pages(pages)
        lines += [("SP", start), ("EP", end or "")]
    lines += [("DO", flat(record.get("doi"))), ("AN", flat(record.get("pmid"))),
              ("C2", flat(record.get("pmcid"))), ("LA", flat(record.get("language"))),
              ("M3", "; ".join(flat(t) for t in record["publication_types"] if flat(t)))]
    lines += [("N1", f"Registration: {number}") for number in registrations(record)]
    lines.append(("AB", flat(record["abstract"])))
    text = "".join(f"{tag}  - {value}\n" for tag, value in lines if value)
    return text + "ER  - \n"


def ris_file(records: Iterable[dict[str, Any]]) -> str:
    return "\n".join(ris_record(r) for r in sorted(records, key=lambda r: r["rec_id"]))


def check_ris(data: bytes, expected: list[str]) -> None:
    """Read the file back with rispy's defaults and compare the ids."""
    import rispy  # runtime dependency, imported late

    got = [entry.get("id") for entry in rispy.loads(data.decode("utf-8"))]
    if got != expected:
        raise RuntimeError(f"RIS reads back {len(got)} ids, expected {len(expected)}")
