"""The raw-body archive: E-utilities bodies written once, as received, with their SHA-256.

``fetch-state.json`` beside them is the ledger that lets an interrupted search or fetch resume
without losing or doubling a record; :class:`Archived` is the base of the results listing them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reviewpipe.errors import EntrezError

STATE_FILE = "fetch-state.json"
log = logging.getLogger("reviewpipe.entrez")  # the Entrez client's one logger


def utcnow() -> str:
    """Now, in UTC, as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def sha256(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class Archive:
    """Raw bodies under ``raw_dir`` and their ledger; entries whose file fails its hash drop out."""

    def __init__(self, raw_dir: Path, operation: dict[str, Any]) -> None:
        self.dir = Path(raw_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.operation = operation
        self.files: list[dict[str, Any]] = []
        state_path = self.dir / STATE_FILE
        if not state_path.exists():
            return
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            previous, files = state["operation"], list(state["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s is unreadable (%s); starting a fresh ledger", state_path, exc)
            return
        if previous != operation:
            raise EntrezError(f"{self.dir}: holds a different fetch ({previous}); use an empty "
                              "raw directory for this search.")
        for entry in files:
            path = self.dir / entry.get("path", "")
            try:
                ok = path.is_file() and sha256(path.read_bytes()) == entry.get("sha256")
            except OSError:
                ok = False
            if ok:
                self.files.append(entry)
            else:
                log.warning("%s: missing or fails its sha256; it will be fetched again", path)

    def held(self) -> dict[str, str]:
        """PMID -> the first efetch file in the ledger holding it."""
        out: dict[str, str] = {}
        for entry in self.files:
            if entry["kind"].startswith("efetch"):
                for pmid in entry["pmids"]:
                    out.setdefault(pmid, entry["path"])
        return out

    def save(self, stem: str, body: bytes, kind: str, params: dict[str, Any],
             pmids: list[str], **extra: Any) -> dict[str, Any]:
        taken = {f["path"] for f in self.files}
        name, n = f"{stem}.xml", 1
        while name in taken or (self.dir / name).exists():
            n += 1
            name = f"{stem}-{n}.xml"
        write_atomic(self.dir / name, body)
        entry = {"path": name, "sha256": sha256(body), "kind": kind,
                 "params": {k: v if isinstance(v, str | int) else ",".join(map(str, v))
                            for k, v in params.items()},
                 "n_records": len(pmids), "pmids": pmids, "saved_at": utcnow(), **extra}
        self.files.append(entry)
        state = {"format": "reviewpipe-fetch-state/1", "operation": self.operation,
                 "files": self.files}
        write_atomic(self.dir / STATE_FILE, json.dumps(state, indent=1).encode("utf-8"))
        return entry

    def manifest_files(self, result: set[str]) -> list[dict[str, Any]]:
        """Ledger entries for the manifest; ``pmids`` = the records each file contributes."""
        owner = {p: f for p, f in self.held().items() if p in result}
        out = []
        for entry in self.files:
            mine = sorted((p for p in entry["pmids"] if owner.get(p) == entry["path"]), key=int) \
                if entry["kind"].startswith("efetch") else []
            out.append({"path": entry["path"], "sha256": entry["sha256"], "kind": entry["kind"],
                        "n_records": entry["n_records"], "pmids": mine})
        return out


class Archived:
    """What a search and a fetch share: archived raw files under ``raw_dir``."""

    raw_dir: Path | None
    raw_files: list[dict[str, Any]]

    def to_manifest(self) -> dict[str, Any]:
        """Return the result as plain JSON types (``raw_dir`` left out: paths are relative)."""
        out = asdict(self)  # type: ignore[call-overload]
        out.pop("raw_dir")
        return out

    def efetch_files(self) -> list[Path]:
        """Absolute paths of the efetch bodies that hold the records."""
        return _efetch_paths(self.raw_dir, self.raw_files)


def _efetch_paths(raw_dir: Path | None, files: list[dict[str, Any]]) -> list[Path]:
    base = raw_dir or Path(".")
    return [base / f["path"] for f in files if f["kind"].startswith("efetch") and f["pmids"]]
