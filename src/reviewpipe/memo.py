"""A stage's machine output per cluster, kept in the run so that an update run can reuse it.

A memo is a JSON-lines artifact: a header ``{"key": ...}``, then ``{"id", "inputs", "row"}``
per cluster. ``inputs`` is the hash of what the machine read for that cluster; ``key`` is a
digest of the code that made the rows and of the protocol (search settings aside), so a change
to either makes every row stale. A later run reuses a row only when both still match, which
gives the same bytes as deciding again: the stages are pure functions of those inputs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata, resources
from typing import Any

from reviewpipe.protocol import Protocol
from reviewpipe.runs import Run


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


def write_memo(run: Run, name: str, key: str,
               entries: Iterable[tuple[str, str, Any]]) -> None:
    """Write ``(id, inputs, row)`` entries, sorted by id."""
    lines = [json.dumps({"key": key})]
    lines += [json.dumps({"id": i, "inputs": h, "row": row}, sort_keys=True, ensure_ascii=False)
              for i, h, row in sorted(entries, key=lambda e: e[0])]
    run.write_text(name, "\n".join(lines) + "\n")
