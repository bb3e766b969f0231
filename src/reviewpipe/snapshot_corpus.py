"""Read and check the topic corpus ``records.jsonl``; read a record's fields as printed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reviewpipe.errors import InputError

__all__ = ["STR_FIELDS", "flat", "load_corpus", "registrations"]

STR_FIELDS = ("title", "journal", "volume", "issue", "pages", "doi", "pmid", "pmcid",
              "registration")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")


def load_corpus(path: Path) -> list[dict[str, Any]]:
    """Read and check ``records.jsonl``; raise ``InputError`` naming the first bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "corpus file not found; pass --corpus") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 ({exc.reason})") from None
    records: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not a JSON object ({exc.msg})", line=number) from None
        problem = _record_problem(record)
        if problem:
            raise InputError(path, problem, line=number)
        rec_id = record["rec_id"]
        if rec_id in first_line:
            raise InputError(path, f"duplicate rec_id {rec_id!r} (first on line "
                                   f"{first_line[rec_id]})", line=number)
        first_line[rec_id] = number
        records.append(record)
    if not records:
        raise InputError(path, "corpus has no records")
    return records


def _record_problem(record: Any) -> str | None:
    """What is wrong with one parsed corpus line, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key in ("rec_id", "source_url", "abstract"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"'{key}' must be a non-empty string"
    if not urlsplit(record["source_url"]).hostname:
        return f"'source_url' has no host: {record['source_url']!r}"
    for key in (*STR_FIELDS, "language"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"'{key}' must be a string or null"
    year = record.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        return "'year' must be an integer or null"
    authors = record.get("authors")
    if authors is not None and not (isinstance(authors, list)
                                    and all(isinstance(a, str) for a in authors)):
        return "'authors' must be a list of strings or null"
    types = record.get("publication_types")
    if not (isinstance(types, list) and all(isinstance(t, str) for t in types)):
        return "'publication_types' must be a list of strings"
    if record.get("pmid") and not record["pmid"].isdigit():
        return f"'pmid' must be digits: {record['pmid']!r}"
    return None


# ----------------------------------------------------------------------------- fields


def flat(value: Any) -> str:
    """Text with newline runs collapsed to one space; everything else kept as printed."""
    return _NEWLINES.sub(" ", "" if value is None else str(value)).strip()


def registrations(record: dict[str, Any]) -> list[str]:
    """Registration numbers as printed, split where one field lists several."""
    return [p for p in re.split(r"[;,\s]+", record.get("registration") or "") if p]
