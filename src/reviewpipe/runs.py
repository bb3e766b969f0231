"""Run folders: ``data/reviews/<id>/runs/<run-id>/`` with artifacts and ``manifest.json``.

A run is built in ``<run-id>.partial`` and renamed when complete; only then does
``data/reviews/<id>/latest`` (a symlink) move to it, so a failed run leaves ``latest`` where it
was. Artifacts are written to a temporary file and renamed, with their SHA-256 in the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from reviewpipe.errors import MissingInput

STAGES = ("search", "dedupe", "screen", "extract", "synthesize", "report")
_PACKAGES = ("reviewpipe", "biopython", "rapidfuzz", "scikit-learn", "pandas", "numpy", "scipy",
             "statsmodels", "rispy", "defusedxml", "click")


@dataclass(frozen=True)
class ReviewPaths:
    """Where one review's generated state lives under a project root."""

    root: Path
    review_id: str

    @property
    def review_dir(self) -> Path:
        return self.root / "data" / "reviews" / self.review_id

    @property
    def runs_dir(self) -> Path:
        return self.review_dir / "runs"

    @property
    def latest(self) -> Path:
        return self.review_dir / "latest"

    @property
    def store(self) -> Path:
        return self.review_dir / "review.sqlite"


@dataclass(frozen=True)
class StageResult:
    """What a stage did: its name, the counts it reports and the artifacts it wrote."""

    stage: str
    counts: dict[str, Any]
    outputs: tuple[str, ...]


@dataclass
class Run:
    """One run folder and its manifest (kept in memory, written on every change)."""

    run_id: str
    dir: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.dir.name.endswith(".partial")

    def path(self, name: str) -> Path:
        return self.dir / name

    def require(self, name: str, stage: str) -> Path:
        """The path of an artifact an earlier stage must have written."""
        path = self.dir / name
        if not path.exists():
            raise MissingInput(
                f"{path}: missing. Run `reviewpipe {stage} --review "
                f"{self.manifest.get('review', '<id>')}` first."
            )
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write an artifact atomically and note its SHA-256 for the manifest.

        The manifest itself is saved when the stage is recorded (or the run finished): a
        stage killed half-way is not recorded, so its artifacts count for nothing anyway.
        """
        path = self.dir / name
        atomic_write(path, data)
        self.manifest.setdefault("artifacts", {})[name] = hashlib.sha256(data).hexdigest()
        return path

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode("utf-8"))

    def write_csv(self, name: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Path:
        return self.write_text(name, csv_text(columns, rows))

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, dumps(data))

    def read_csv(self, name: str, stage: str) -> list[dict[str, str]]:
        with self.require(name, stage).open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    def read_columns(self, name: str, stage: str, columns: Sequence[str]
                     ) -> list[tuple[str, ...]]:
        """Some columns of a CSV artifact, a tuple per row (a fraction of read_csv's cost on
        a large review: no dict per row)."""
        with self.require(name, stage).open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            missing = [c for c in columns if c not in header]
            if missing:
                raise MissingInput(f"{self.dir / name}: no column(s) {', '.join(missing)}")
            at = [header.index(c) for c in columns]
            return [tuple(row[i] for i in at) for row in reader]

    def record_stage(self, stage: str, *, outputs: Sequence[str] = (), **info: Any) -> None:
        """Mark a stage done; delete the artifacts of later stages, which are now stale."""
        stages = self.manifest.setdefault("stages", {})
        artifacts = self.manifest.setdefault("artifacts", {})
        for later in STAGES[STAGES.index(stage) + 1:]:
            for name in stages.pop(later, {}).get("outputs", []):
                (self.dir / name).unlink(missing_ok=True)
                artifacts.pop(name, None)
        stages[stage] = {**info, "outputs": list(outputs), "finished_at": now_iso()}
        self.save_manifest()

    def save_manifest(self) -> None:
        self.manifest["updated_at"] = now_iso()
        atomic_write(self.dir / "manifest.json", dumps(self.manifest).encode("utf-8"))


def new_run(paths: ReviewPaths, *, protocol_path: Path, protocol_sha256: str, seed: int,
            live: bool) -> Run:
    """Create ``runs/<run-id>.partial`` with a first manifest."""
    paths.runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = stamp, 1
    while (paths.runs_dir / run_id).exists() or (paths.runs_dir / f"{run_id}.partial").exists():
        n += 1
        run_id = f"{stamp}-{n}"
    folder = paths.runs_dir / f"{run_id}.partial"
    folder.mkdir()
    run = Run(run_id=run_id, dir=folder)
    run.manifest = {
        "reviewpipe_version": _version("reviewpipe"),
        "review": paths.review_id,
        "run_id": run_id,
        "started_at": now_iso(),
        "live": live,
        "seed": seed,
        "protocol": {"path": _relative(protocol_path, paths.root), "sha256": protocol_sha256},
        "environment": environment(),
        "stages": {},
        "artifacts": {},
    }
    run.save_manifest()
    return run


def finish_run(paths: ReviewPaths, run: Run) -> Run:
    """Rename the partial folder to its final name and point ``latest`` at it."""
    final = paths.runs_dir / run.run_id
    run.manifest["finished_at"] = now_iso()
    run.save_manifest()
    os.replace(run.dir, final)
    run.dir = final
    point_latest(paths, final)
    return run


def point_latest(paths: ReviewPaths, folder: Path) -> None:
    """Atomically repoint the ``latest`` symlink (relative, so the tree can move)."""
    temp = paths.review_dir / ".latest.tmp"
    if temp.is_symlink() or temp.exists():
        temp.unlink()
    temp.symlink_to(Path("runs") / folder.name)
    os.replace(temp, paths.latest)


def open_run(paths: ReviewPaths, run_id: str | None = None) -> Run:
    """The latest complete run, or the named one."""
    if run_id:
        folder = paths.runs_dir / run_id
    else:
        if not paths.latest.exists():
            raise MissingInput(
                f"{paths.latest}: no complete run yet. Run `reviewpipe search --review "
                f"{paths.review_id}` (or `reviewpipe run`) first."
            )
        folder = paths.latest.resolve()
    return open_run_folder(folder)


def open_run_folder(folder: Path) -> Run:
    """The run in ``folder`` (a sibling of another run: ``run.dir.parent / run_id``)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise MissingInput(f"{folder}: not a run folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return Run(run_id=manifest["run_id"], dir=folder, manifest=manifest)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a sibling temp file, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with temp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]], *,
             header: bool = True) -> str:
    """CSV text as artifacts hold it: Unix line ends, lists as JSON, None as empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n",
                            extrasaction="ignore")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buffer.getvalue()


def dumps(data: Any) -> str:
    """Canonical JSON for artifacts: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": {name: _version(name) for name in _PACKAGES},
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if value == value else ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value
