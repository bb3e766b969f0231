"""A stage's machine output per cluster, kept in the run so that an update run can reuse it.

A memo is a JSON-lines artifact: a header ``{"key": ...}``, then ``{"id", "inputs", "row"}``
per cluster. ``inputs`` is the hash of what the machine read for that cluster; ``key`` is a
digest of the code that made the rows and of the protocol (search settings aside), so a change
to either makes every row stale. A later run reuses a row only when both still match, which
gives the same bytes as deciding again: the stages are pure functions of those inputs.

An update carries most of a previous run's lines as they are, so the helpers below work on raw
lines (bytes) at C speed and leave parsing to the few lines that are used.
"""

from __future__ import annotations

import csv
import hashlib
import json
import mmap
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata, resources
from typing import Any

from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run, csv_text

# An entry's id: json.dumps with sort_keys puts it first on its line.
_ENTRY_ID = re.compile(rb'\n\{"id": "([^"\\]*)", "inputs": ')


def stage_key(protocol: Protocol, modules: Sequence[str], data: Sequence[str] = (),
              extra: Any = None) -> str:
    """Digest of ``reviewpipe.<module>`` sources (``readers/safexml`` for a subpackage's),
    package data files, the protocol, ``extra`` and the versions of Python and the numeric
    libraries."""
    digest = hashlib.sha256()
    package = resources.files("reviewpipe")
    for name in [f"{m}.py" for m in modules] + [f"data/{d}" for d in data]:
        digest.update(name.encode() + b"\0" + package.joinpath(name).read_bytes() + b"\0")
    settings = {k: v for k, v in protocol.data.items() if k != "search"}
    # Libraries whose numbers or matching the stages depend on: an upgrade decides again.
    libraries = {name: _version(name) for name in ("numpy", "scipy", "rapidfuzz")}
    digest.update(json.dumps([settings, extra, libraries, sys.version], sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def inputs_hash(*parts: Any) -> str:
    """The hash a memo row is filed under: of JSON-serialisable parts, order kept."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_memo(run: Run | None, name: str, key: str) -> dict[str, tuple[str, Any]]:
    """``id -> (inputs, row)`` from ``run``'s memo ``name``; empty when absent or stale."""
    if run is None or not run.path(name).is_file():
        return {}
    with run.path(name).open(encoding="utf-8") as handle:
        header = json.loads(handle.readline() or "{}")
        if header.get("key") != key:
            return {}
        entries = (json.loads(line) for line in handle if line.strip())
        return {e["id"]: (e["inputs"], e["row"]) for e in entries}


def read_memo_lines(run: Run | None, name: str, key: str) -> dict[str, bytes] | None:
    """``id -> line`` of ``run``'s memo ``name`` in file order (by id), each line unparsed
    (``json.loads(line)["row"]`` is the row); None when absent, stale or not as
    :func:`write_memo` writes it."""
    if run is None or not run.path(name).is_file():
        return None
    data = run.path(name).read_bytes()
    header, _, body = data.partition(b"\n")
    if header != _header(key):
        return None
    ids = _ENTRY_ID.findall(data)
    lines = body.split(b"\n")
    if lines.pop() != b"" or len(ids) != len(lines):
        return None
    return dict(zip(map(bytes.decode, ids), lines, strict=True))


def write_memo(run: Run, name: str, key: str,
               entries: Iterable[tuple[str, str, Any]]) -> None:
    """Write ``(id, inputs, row)`` entries, sorted by id."""
    lines = [_header(key).decode()]
    lines += [memo_line(i, h, row) for i, h, row in sorted(entries, key=lambda e: e[0])]
    run.write_text(name, "\n".join(lines) + "\n")


def write_memo_lines(run: Run, name: str, key: str, lines: Mapping[str, bytes]) -> bytes:
    """Write entries given as ``id -> line`` (from :func:`memo_line` or
    :func:`read_memo_lines`): the bytes :func:`write_memo` writes for the same entries, which
    are returned."""
    data = b"\n".join([_header(key), *map(lines.__getitem__, sorted(lines))]) + b"\n"
    run.write_bytes(name, data)
    return data


def memo_line(entry_id: str, inputs: str, row: Any) -> str:
    """One entry's line in a memo."""
    return json.dumps({"id": entry_id, "inputs": inputs, "row": row}, sort_keys=True,
                      ensure_ascii=False)


def _header(key: str) -> bytes:
    return json.dumps({"key": key}).encode()


def line_changes(old: bytes, new: bytes) -> tuple[set[bytes], set[bytes]]:
    """The lines only in ``old`` and those only in ``new`` (two files of unique lines)."""
    before, after = set(old.split(b"\n")), set(new.split(b"\n"))
    return before - after, after - before


def csv_rows(data: bytes, expected: int) -> list[bytes] | None:
    """The rows (header first) of CSV text as artifacts hold it, without line ends; None
    unless there are exactly ``expected``, that is unless no field holds a line break."""
    rows = data.split(b"\n")
    if rows.pop() != b"" or len(rows) != expected:
        return None
    return rows


def csv_line(columns: Sequence[str], row: dict[str, Any]) -> bytes:
    """One row as ``Run.write_csv`` writes it, without its line end."""
    return csv_text(columns, [row], header=False)[:-1].encode("utf-8")


def parse_csv_line(columns: Sequence[str], line: bytes) -> dict[str, str]:
    """One row of a CSV artifact (a line of :func:`csv_rows`) as ``Run.read_csv`` reads it."""
    return dict(zip(columns, next(csv.reader([line.decode("utf-8")])), strict=True))


def find_line(data: bytes | mmap.mmap, key: str, key_of: Callable[[bytes], str | None]
              ) -> bytes | None:
    """The line of ``data`` whose key is ``key``, by binary search: ``data``'s lines end in a
    newline, no two share a key and they are sorted by ``key_of`` (the key of a line)."""
    start = line_start(data, key, key_of)
    end = data.find(b"\n", start)
    if start == len(data) or end < 0:
        return None
    line = data[start:end]
    return line if key_of(line) == key else None


def line_start(data: bytes | mmap.mmap, key: str, key_of: Callable[[bytes], str | None],
               lo: int = 0) -> int:
    """Where the first line of ``data[lo:]`` (lines sorted by ``key_of``, each ending in a
    newline) whose key is not below ``key`` starts; ``len(data)`` when there is none."""
    hi = len(data)
    while lo < hi:  # lines before lo have smaller keys, lines from hi on larger or equal ones
        newline = data.rfind(b"\n", lo, (lo + hi) // 2)  # the line around the middle
        start = lo if newline < 0 else newline + 1
        end = data.find(b"\n", start) + 1 or len(data) + 1
        found = key_of(data[start:end - 1])
        if found is not None and found < key:
            lo = end
        else:
            hi = start
    return min(lo, len(data))

