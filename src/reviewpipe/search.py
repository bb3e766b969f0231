"""Stage 1, search: PubMed (live through Entrez, or the bundled snapshot) plus export files.

Writes ``records.csv`` (one row per record read, every source) and ``search.json`` (what
PRISMA-S asks for: database, query, NCBI's translation, window, date, count, files and hashes).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reviewpipe.errors import InputError, MissingInput
from reviewpipe.protocol import Protocol
from reviewpipe.readers import read_records
from reviewpipe.records import RECORD_COLUMNS, Record, line_record_id
from reviewpipe.runs import Run, StageResult, csv_text, sha256_file
from reviewpipe.store import Store

PUBMED_SOURCE = "pubmed"


def search(protocol: Protocol, store: Store, run: Run, *, live: bool = False,
           environ: Mapping[str, str] | None = None,
           progress: Callable[[int, int], None] | None = None) -> StageResult:
    """Run every source of the protocol and write ``records.csv`` and ``search.json``.

    Parameters
    ----------
    live : bool
        Query PubMed through NCBI E-utilities (needs ``NCBI_EMAIL``) instead of the snapshot.
    environ : mapping, optional
        Where ``NCBI_EMAIL``, ``NCBI_API_KEY`` and ``REVIEWPIPE_EUTILS_URL`` are read from.
    """
    records: list[Record] = []
    sources: list[dict[str, Any]] = []
    pubmed = protocol.pubmed
    if pubmed:
        found, info = (_pubmed_live(protocol, store, environ, progress) if live
                       else _pubmed_snapshot(protocol))
        records.extend(found)
        sources.append(info)
    for export in protocol.exports:
        found, info = _read_export(protocol, export)
        records.extend(found)
        sources.append(info)

    outputs = write_search(store, run, protocol.review_id, records, sources, live=live)
    counts = {s["source"]: s["count"] for s in sources}
    return StageResult("search", {"records": len(records), **counts}, outputs)


def write_search(store: Store, run: Run, review_id: str, records: list[Record],
                 sources: list[dict[str, Any]], *, live: bool) -> tuple[str, ...]:
    """Write the search artifacts and store rows for ``records`` found in ``sources``."""
    records = sorted(records, key=lambda r: r.record_id)
    _check_unique(records)
    run.write_csv("records.csv", RECORD_COLUMNS, (r.to_row() for r in records))
    run.write_json("search.json", {"review": review_id, "sources": sources})
    # Full records (abstract sections, MeSH…) for later stages; records.csv is the readable view.
    lines = [r.to_json() for r in records]
    run.write_text("records.jsonl", "".join(line + "\n" for line in lines))
    store.replace_rows("records", run.run_id, (
        _store_row(r, line) for r, line in zip(records, lines, strict=True)))
    return _finish_search(store, run, sources, live=live)


def extend_search(store: Store, run: Run, review_id: str, previous: Run,
                  new_records: list[Record], sources: list[dict[str, Any]], *,
                  live: bool) -> tuple[str, ...]:
    """Write what :func:`write_search` writes for ``previous``'s records plus ``new_records``.

    The same bytes and store rows, at the cost of the new records: ``previous``'s lines of
    ``records.jsonl`` and rows of ``records.csv`` are copied as bytes (only the O(log n) lines
    a binary search probes are parsed) and its store rows are copied by SQLite. When
    ``previous``'s files and store rows do not agree (a store moved aside, say), every record
    is read and written again instead.
    """
    new = sorted(new_records, key=lambda r: r.record_id)
    _check_unique(new)
    lines = previous.require("records.jsonl", "search").read_bytes().split(b"\n")
    if lines.pop() != b"" or _store_count(store, previous.run_id) != len(lines):
        return _write_all(store, run, review_id, previous, new, sources, live=live)
    rows = _csv_rows(previous.require("records.csv", "search").read_bytes(), len(lines) + 1)
    if rows is None or rows[0] != _csv_line(RECORD_COLUMNS, None):
        return _write_all(store, run, review_id, previous, new, sources, live=live)

    texts = [r.to_json() for r in new]
    json_out: list[bytes] = []
    csv_out = [rows[0]]
    done = 0
    for record, text in zip(new, texts, strict=True):
        # The new records are sorted, so each one's place is at or after the last one's.
        place = bisect.bisect_left(lines, record.record_id, lo=done, key=_line_id)
        if place < len(lines) and _line_id(lines[place]) == record.record_id:
            _check_unique([Record.from_json(lines[place]), record])  # raises, naming record
        json_out += lines[done:place]
        json_out.append(text.encode("utf-8"))
        csv_out += rows[done + 1:place + 1]
        csv_out.append(_csv_line(RECORD_COLUMNS, record.to_row()))
        done = place
    json_out += lines[done:]
    csv_out += rows[done + 1:]

    run.write_bytes("records.csv", b"\n".join(csv_out) + b"\n")
    run.write_json("search.json", {"review": review_id, "sources": sources})
    run.write_bytes("records.jsonl", b"\n".join(json_out) + b"\n" if json_out else b"")
    store.carry_rows("records", previous.run_id, run.run_id, "record_id", (
        _store_row(r, text) for r, text in zip(new, texts, strict=True)))
    # What dedupe in an update needs to know: every other line is the previous run's.
    return _finish_search(store, run, sources, live=live, carried_from=previous.run_id,
                          new_records=[r.record_id for r in new])


def record_sources(store: Store, run: Run) -> list[tuple[str, str | None]]:
    """``(source, pmid)`` of every record a run's search wrote.

    Read from the run's rows in the store, without parsing ``records.jsonl``; parsed only
    when the store does not hold one row per line of it.
    """
    rows = store.db.execute("SELECT source, pmid FROM records WHERE run_id = ?",
                            (run.run_id,)).fetchall()
    if len(rows) == _line_count(run.require("records.jsonl", "search")):
        return [(source, pmid) for source, pmid in rows]
    return [(r.source, r.pmid) for r in load_records(run)]


def load_records(run: Run) -> list[Record]:
    """The records a run's search stage wrote, in record_id order."""
    path = run.require("records.jsonl", "search")
    with path.open(encoding="utf-8") as handle:
        return [Record.from_json(line) for line in handle if line.strip()]


def _write_all(store: Store, run: Run, review_id: str, previous: Run, new: list[Record],
               sources: list[dict[str, Any]], *, live: bool) -> tuple[str, ...]:
    # Previous records first: a duplicate id is then reported on the new record.
    return write_search(store, run, review_id, load_records(previous) + new, sources,
                        live=live)


def _finish_search(store: Store, run: Run, sources: list[dict[str, Any]], *,
                   live: bool, **info: Any) -> tuple[str, ...]:
    """The ``searches`` rows, the manifest's sources and the stage record."""
    store.replace_rows("searches", run.run_id, (
        (s["source"], s["database"], s.get("query"), s.get("translation"), s["count"],
         s.get("mindate"), s.get("maxdate"), s.get("datetype"), s.get("searched_at"),
         s.get("file")) for s in sources))
    # The PMID lists stay in search.json (hashed like every artifact): the manifest is saved
    # at every stage, and 20,000 PMIDs twice over made that cost grow with the review.
    run.manifest["search"] = [_without_pmids(s) for s in sources]
    outputs = ("records.csv", "records.jsonl", "search.json")
    run.record_stage("search", counts={s["source"]: s["count"] for s in sources}, live=live,
                     outputs=outputs, **info)
    return outputs


def _without_pmids(source: dict[str, Any]) -> dict[str, Any]:
    lean = {k: v for k, v in source.items() if k != "pmids"}
    if "raw_files" in lean:
        lean["raw_files"] = [{k: v for k, v in f.items() if k != "pmids"}
                             for f in lean["raw_files"]]
    return lean


def search_sources(run: Run) -> list[dict[str, Any]]:
    """The sources a run's search read, in full (``search.json``)."""
    path = run.require("search.json", "search")
    return json.loads(path.read_text(encoding="utf-8"))["sources"]


def _store_row(record: Record, line: str) -> tuple[Any, ...]:
    return (record.record_id, record.source, record.pmid, record.doi, record.title,
            record.year, line)


def _store_count(store: Store, run_id: str) -> int:
    return store.db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?",
                            (run_id,)).fetchone()[0]


def _csv_line(columns: list[str], row: dict[str, Any] | None) -> bytes:
    """One row (the header if None) as records.csv holds it, without its line end."""
    text = csv_text(columns, ()) if row is None else csv_text(columns, [row], header=False)
    return text.encode("utf-8").removesuffix(b"\n")


def _line_id(line: bytes) -> str:
    return line_record_id(line) or ""


def _line_count(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


def _csv_rows(data: bytes, expected: int) -> list[bytes] | None:
    """The rows (header first) of CSV text the csv module wrote, without their line ends;
    None unless there are ``expected`` of them.

    A quoted field may hold line breaks; then a line ends a row only where the quotes so far
    are balanced, since the writer quotes every field holding a quote and doubles those.
    """
    lines = data.split(b"\n")
    if lines.pop() != b"":
        return None
    if len(lines) == expected:  # as many lines as rows: no field holds a line break
        return lines
    rows: list[bytes] = []
    start, open_quote = 0, False
    for number, line in enumerate(lines):
        if line.count(b'"') % 2:
            open_quote = not open_quote
        if not open_quote:
            rows.append(b"\n".join(lines[start:number + 1]))
            start = number + 1
    return rows if len(rows) == expected and not open_quote else None


def _pubmed_snapshot(protocol: Protocol) -> tuple[list[Record], dict[str, Any]]:
    pubmed = protocol.pubmed or {}
    if not pubmed.get("snapshot"):
        raise MissingInput(
            f"{protocol.path}: 'search.pubmed.snapshot' is not set, so there is nothing to search "
            "offline. Set it, or search live with --live."
        )
    path = protocol.resolve(pubmed["snapshot"])
    if not path.exists():
        raise MissingInput(f"{path}: snapshot file not found ('search.pubmed.snapshot').")
    read = _relative_files(protocol, read_records(path, source=PUBMED_SOURCE,
                                                  format="pubmed-xml", database="PubMed"))
    lo, hi = _date_key(pubmed["mindate"]), _date_key(pubmed["maxdate"])
    kept = [r for r in read if not r.deleted and _in_window(r, pubmed["datetype"], lo, hi)]
    info = {
        "source": PUBMED_SOURCE, "database": "PubMed", "kind": "database", "mode": "snapshot",
        "query": pubmed["query"].strip(), "translation": None,
        "note": "offline: the snapshot holds the query's results; the date window is applied "
                "to it, the query itself is not re-evaluated",
        "mindate": pubmed["mindate"], "maxdate": pubmed["maxdate"],
        "datetype": pubmed["datetype"], "searched_at": None,
        "file": _display(protocol, path), "sha256": sha256_file(path),
        "records_in_file": len(read), "outside_window": len(read) - len(kept),
        "count": len(kept),
    }
    return kept, info


def _pubmed_live(protocol: Protocol, store: Store, environ: Mapping[str, str] | None,
                 progress: Callable[[int, int], None] | None) -> tuple[list[Record], dict]:
    from reviewpipe.entrez import EntrezConfig
    from reviewpipe.entrez_search import search_pubmed

    pubmed = protocol.pubmed or {}
    config = EntrezConfig.from_env(os.environ if environ is None else environ)
    config.batch_size = pubmed["batch_size"]
    query = " ".join(pubmed["query"].split())
    key = hashlib.sha256("\x1f".join(
        [query, pubmed["mindate"], pubmed["maxdate"], pubmed["datetype"]]).encode()).hexdigest()
    raw_dir = store.raw_dir / "pubmed" / key[:16]
    result = search_pubmed(query, mindate=pubmed["mindate"], maxdate=pubmed["maxdate"],
                           datetype=pubmed["datetype"], raw_dir=raw_dir, config=config,
                           progress=progress)
    by_pmid: dict[str, Record] = {}
    for raw in result.efetch_files():
        for record in _relative_files(protocol, read_records(
                raw, source=PUBMED_SOURCE, format="pubmed-xml", database="PubMed")):
            if record.pmid in result.pmids and not record.deleted:
                by_pmid.setdefault(record.pmid, record)
    info = {**result.to_manifest(), "source": PUBMED_SOURCE, "database": "PubMed",
            "kind": "database", "mode": "live", "raw_dir": _display(protocol, raw_dir),
            "count": len(by_pmid)}
    return list(by_pmid.values()), info


def _read_export(protocol: Protocol, export: dict[str, Any]) -> tuple[list[Record], dict]:
    path = protocol.resolve(export["file"])
    if not path.exists():
        raise MissingInput(f"{path}: export file not found (listed in {protocol.path}).")
    source = _source_name(path)
    records = _relative_files(protocol, read_records(
        path, source=source, format=export["format"], database=export["database"] or None,
        column_map=export["columns"] or None))
    read = len(records)
    if export["maxdate"]:
        # The database's own date limit: what it would not have returned is not identified.
        hi = _date_key(export["maxdate"])
        records = [r for r in records if _in_window(r, "pdat", (0, 0, 0), hi)]
    databases = sorted({r.database for r in records if r.database})
    info = {
        "source": source, "database": export["database"] or export["label"] or source,
        "kind": export["kind"], "label": export["label"], "mode": "file",
        "file": _display(protocol, path), "format": export["format"],
        "sha256": sha256_file(path), "databases_in_file": databases,
        "maxdate": export["maxdate"] or None, "records_in_file": read,
        "outside_window": read - len(records), "count": len(records),
    }
    return records, info


def _relative_files(protocol: Protocol, records: list[Record]) -> list[Record]:
    """Record files relative to the project root, so artifacts do not depend on where it is."""
    for record in records:
        record.file = _display(protocol, Path(record.file))
        if record.raw_file:
            record.raw_file = _display(protocol, Path(record.raw_file))
    return records


def _source_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".xml", ".ris", ".nbib", ".txt", ".csv"):
        name = name.removesuffix(suffix)
    return name.lower().replace(" ", "-")


def _check_unique(records: list[Record]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.record_id in seen:
            raise InputError(record.file, f"record id {record.record_id} occurs twice; give "
                             "the two sources different file names or the records unique ids",
                             record=record.source_id)
        seen.add(record.record_id)


def _record_date(record: Record, datetype: str) -> tuple[int, int, int] | None:
    """The date the window applies to; a record without a publication date falls back to its
    Entrez date, as PubMed dates such records; None when it has neither."""
    if datetype == "edat" and record.entrez_date:
        return _date_key(record.entrez_date)
    if record.published_date:
        return _date_key(record.published_date)
    if record.year:
        return (record.year, 1, 1)
    if record.entrez_date:
        return _date_key(record.entrez_date)
    return None


def _in_window(record: Record, datetype: str, lo: tuple[int, int, int],
               hi: tuple[int, int, int]) -> bool:
    when = _record_date(record, datetype)
    return when is None or lo <= when <= hi  # undated: kept, a human can judge it


def _date_key(value: str) -> tuple[int, int, int]:
    parts = [int(p) for p in value.replace("-", "/").split("/") if p.isdigit()][:3]
    parts += [1] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def _display(protocol: Protocol, path: Path) -> str:
    root = protocol.path.resolve().parent.parent
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
