"""Audit: verify the decision log and every run's files; explain one record's whole path."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewpipe.runs import ReviewPaths, Run, open_run, sha256_file
from reviewpipe.store import GENESIS, Store, entry_hash


@dataclass
class AuditReport:
    """Problems found, one line each, naming the entry or file."""

    problems: list[str] = field(default_factory=list)
    entries: int = 0
    runs: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(entries: list[dict[str, Any]]) -> list[str]:
    """Recompute the decision log's hash chain; name every entry that does not match."""
    problems = []
    prev = GENESIS
    for entry in entries:
        body = {k: entry[k] for k in ("run_id", "subject", "stage", "decision", "reason",
                                      "evidence", "actor", "inputs_sha256", "prev_hash")}
        if entry["prev_hash"] != prev:
            problems.append(f"decision_log entry {entry['seq']}: prev_hash does not match the "
                            "entry before it (an entry was removed or reordered)")
        if entry_hash(body) != entry["hash"]:
            problems.append(f"decision_log entry {entry['seq']} ({entry['stage']} "
                            f"{entry['subject']}): content does not match its hash (edited)")
        prev = entry["hash"]
    return problems


def verify_run(folder: Path, root: Path) -> tuple[list[str], int]:
    """Check every artifact and every input named in a run's manifest against its SHA-256."""
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{manifest_path}: unreadable manifest ({exc})"], 0
    problems = []
    checked = 0
    for name, digest in sorted(manifest.get("artifacts", {}).items()):
        checked += 1
        problems.extend(_check(folder / name, digest, "SHA-256 differs from the manifest "
                                                      "(changed after the run)"))
    for source in manifest.get("search", []):
        if source.get("file") and source.get("sha256"):
            checked += 1
            problems.extend(_check(root / source["file"], source["sha256"],
                                   "input file differs from the one the run read"))
        for raw in source.get("raw_files", []):
            if source.get("raw_dir") and raw.get("path") and raw.get("sha256"):
                checked += 1
                problems.extend(_check(root / source["raw_dir"] / raw["path"], raw["sha256"],
                                       "raw response differs from the one archived"))
    return problems, checked


def _check(path: Path, digest: str, what: str) -> list[str]:
    if not path.exists():
        return [f"{path}: listed in the manifest but missing"]
    return [] if sha256_file(path) == digest else [f"{path}: {what}"]


def verify(paths: ReviewPaths, *, rederive_runs: bool = True) -> AuditReport:
    """Verify the hash chain and every complete run of a review, and re-derive each run's
    machine decisions from its archived inputs (see :func:`rederive`)."""
    report = AuditReport()
    with Store.open(paths.store) as store:
        entries = store.decision_log()
    report.entries = len(entries)
    report.problems.extend(verify_chain(entries))
    if paths.runs_dir.exists():
        for folder in sorted(p for p in paths.runs_dir.iterdir()
                             if p.is_dir() and not p.name.endswith(".partial")):
            problems, files = verify_run(folder, paths.root)
            report.problems.extend(problems)
            if rederive_runs and not problems:
                report.problems.extend(rederive(paths, folder))
            report.files += files
            report.runs += 1
    return report


def explain(paths: ReviewPaths, record_id: str, run_id: str | None = None) -> dict[str, Any]:
    """One record's path through the run: source, duplicates and why, screening, humans."""
    run = open_run(paths, run_id)
    records = {r["record_id"]: r for r in run.read_csv("records.csv", "search")}
    clusters = run.read_csv("clusters.csv", "dedupe")
    cluster_of = {c["record_id"]: c["cluster_id"] for c in clusters}
    cluster_id = cluster_of.get(record_id, record_id)
    members = sorted(c["record_id"] for c in clusters if c["cluster_id"] == cluster_id)
    if record_id not in records and not members:
        from reviewpipe.errors import InputError

        raise InputError(str(run.dir / "records.csv"), f"no record or cluster {record_id!r}")
    merges = [m for m in run.read_csv("merge_log.csv", "dedupe")
              if m["record_a"] in members or m["record_b"] in members]
    screening = [s for s in run.read_csv("screening.csv", "screen")
                 if s["cluster_id"] == cluster_id]
    search = json.loads(run.require("search.json", "search").read_text(encoding="utf-8"))
    record = records.get(record_id) or records.get(members[0], {})
    source = next((s for s in search["sources"] if s["source"] == record.get("source")), {})
    with Store.open(paths.store) as store:
        entries = store.decision_log(subjects=(cluster_id, *members))
    log = [e for e in entries if e["run_id"] == run.run_id]
    carried = {stage for stage, info in run.manifest.get("stages", {}).items()
               if info.get("carried_from")}
    if carried:
        # An update logs only what it decided; a verdict it carried forward was logged by the
        # run that made it: the latest such entry before this run, per stage and subject.
        first = min((e["seq"] for e in log), default=None)
        own = {(e["stage"], e["subject"]) for e in log}
        earlier: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in entries:
            key = (entry["stage"], entry["subject"])
            if entry["stage"] in carried and key not in own and entry["run_id"] != run.run_id \
                    and (first is None or entry["seq"] < first):
                earlier[key] = entry
        log = sorted([*log, *earlier.values()], key=lambda e: e["seq"])
    return {
        "record_id": record_id, "run_id": run.run_id, "cluster_id": cluster_id,
        "record": {k: record.get(k) for k in ("source", "source_id", "database", "file", "pmid",
                                               "doi", "title", "year", "raw_file", "raw_index")},
        "search": {k: source.get(k) for k in ("database", "mode", "query", "translation",
                                               "mindate", "maxdate", "file", "sha256")},
        "duplicates": members, "merges": merges, "screening": screening[0] if screening else None,
        "decision_log": [{k: e[k] for k in ("seq", "run_id", "stage", "subject", "decision",
                                             "reason", "actor", "hash")} for e in log],
    }


def bundle(paths: ReviewPaths, protocol_path: Path, output: Path | None = None,
           run_id: str | None = None) -> Path:
    """One zip an auditor can take away: protocol, searches, raw inputs, hashes, the decision
    log, thresholds, model card, environment lock and PRISMA counts of a run.

    Members are written in a fixed order with a fixed timestamp, so the same run gives the
    same archive.
    """
    import zipfile
    from importlib import metadata

    run = open_run(paths, run_id)
    output = output or paths.review_dir / f"audit-{run.run_id}.zip"
    members: list[tuple[str, bytes]] = [("protocol/" + protocol_path.name,
                                         protocol_path.read_bytes())]
    for sibling in sorted(protocol_path.parent.glob(f"{paths.review_id}.*.csv")):
        members.append(("protocol/" + sibling.name, sibling.read_bytes()))
    for artifact in sorted(p for p in run.dir.rglob("*") if p.is_file()):
        members.append((f"run/{artifact.relative_to(run.dir).as_posix()}",
                        artifact.read_bytes()))
    for source in run.manifest.get("search", []):
        if source.get("file"):
            path = paths.root / source["file"]
            if path.exists():
                members.append((f"inputs/{source['file']}", path.read_bytes()))
        for raw in source.get("raw_files", []):
            path = paths.root / source.get("raw_dir", "") / raw.get("path", "")
            if source.get("raw_dir") and path.is_file():
                members.append((f"inputs/{source['raw_dir']}/{raw['path']}", path.read_bytes()))
    with Store.open(paths.store) as store:
        log = store.decision_log()
    members.append(("decision_log.jsonl", "".join(
        json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in log).encode()))
    lock = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    members.append(("environment.lock", ("\n".join(lock) + "\n").encode()))
    from reviewpipe.design import RULES_VERSION

    card = {"design_rules": RULES_VERSION, "thresholds": run.manifest.get("protocol", {})}
    try:
        from importlib import resources

        model_card = resources.files("reviewpipe").joinpath("data/design_model_card.md")
        if model_card.is_file():
            members.append(("model_card.md", model_card.read_bytes()))
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    members.append(("models.json", json.dumps(card, indent=2, sort_keys=True).encode()))
    hashes = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                     for name, data in members)
    members.append(("SHA256SUMS", hashes.encode()))
    output.parent.mkdir(parents=True, exist_ok=True)
    temp = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        seen: set[str] = set()
        for name, data in members:
            if name in seen:
                continue
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    temp.replace(output)
    return output


def rederive(paths: ReviewPaths, folder: Path) -> list[str]:
    """Re-derive a run's machine decisions from its archived inputs and name each difference.

    The run's own copy of the protocol (``inputs/``) is used. Runs searched from files (the
    snapshot, exports) are searched again from those files, whose hashes must match; live runs
    start from the run's hashed ``records.jsonl``, since PubMed cannot be asked again as it
    was. Dedupe and screening then run in a scratch store, and each cluster's membership and
    machine decision (before any human) are compared with what the run recorded. An update is
    replayed on the run it built on (which is verified in its turn): its new records matched
    against that run's clusters, its unchanged verdicts taken from that run.
    """
    import shutil
    import tempfile

    from reviewpipe.pipeline import stage_functions
    from reviewpipe.protocol import load_protocol
    from reviewpipe.search import load_records, write_search

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if "screen" not in manifest.get("stages", {}):
        return []
    carried = manifest["stages"].get("dedupe", {}).get("carried_from")
    if carried and not carried < folder.name:
        # Run ids sort by time: an update builds on an earlier run, never on itself.
        return [f"{folder.name}: says it updates run {carried}, which is not an earlier run"]
    if carried and not (paths.runs_dir / carried / "manifest.json").is_file():
        return [f"{folder.name}: an update of run {carried}, which is gone; cannot replay it"]
    copies = sorted((folder / "inputs").glob("*.toml")) if (folder / "inputs").is_dir() else []
    if not copies:
        return [f"{folder}: no inputs/ copy of the protocol; cannot re-derive this run"]
    sources = manifest.get("search", [])
    live = any(s.get("mode") == "live" for s in sources)
    functions = stage_functions()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "queries").mkdir()
        for copy in (folder / "inputs").iterdir():
            shutil.copy(copy, root / "queries" / copy.name)
        protocol = load_protocol(root / "queries" / copies[0].name)
        store = Store.open(root / "scratch" / "review.sqlite")
        run = Run(run_id="rederive", dir=root / "run", manifest={"review": paths.review_id})
        run.dir.mkdir()
        try:
            if live:
                recorded = Run(run_id=manifest["run_id"], dir=folder, manifest=manifest)
                write_search(store, run, protocol.review_id, load_records(recorded), sources,
                             live=True)
            else:
                for source in sources:
                    target = root / source["file"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(paths.root / source["file"], target)
                functions["search"](protocol, store, run)
            since = _carried_from(paths, manifest)
            functions["dedupe"](protocol, store, run, since=since)
            functions["screen"](protocol, store, run, since=since)
            again = _decisions_by_members(run.dir)
            # What a later update takes from this run without deciding it again.
            problems = _machine_files_differ(folder, run.dir)
        finally:
            store.close()
    recorded = _decisions_by_members(folder)
    for members, (cluster_id, verdict) in sorted(recorded.items(), key=lambda kv: kv[1][0]):
        if members not in again:
            problems.append(f"{folder.name}: cluster {cluster_id} ({len(members)} records) is "
                            "not a cluster when re-derived from the inputs")
        elif again[members][1] != verdict:
            problems.append(f"{folder.name}: cluster {cluster_id}: recorded machine decision "
                            f"{verdict}, re-derived {again[members][1]}")
    for members, (_, verdict) in again.items():
        if members not in recorded:
            problems.append(f"{folder.name}: re-derived cluster of {sorted(members)[0]} and "
                            f"{len(members) - 1} more is not in the run ({verdict})")
    return problems


def _machine_files_differ(folder: Path, again: Path) -> list[str]:
    """Differences between a run's screening memo and dedupe index and those re-derived (the
    code's key aside): an update replays on them, so they are checked as decisions are."""
    problems = []
    recorded, derived = _memo_rows(folder), _memo_rows(again)
    if recorded is not None and derived is not None:
        for cluster_id in sorted(recorded.keys() | derived.keys()):
            if recorded.get(cluster_id) != derived.get(cluster_id):
                problems.append(f"{folder.name}: screen_memo.jsonl: cluster {cluster_id} "
                                "differs from the machine verdict re-derived")
    index, index_again = _index_body(folder), _index_body(again)
    if index is not None and index_again is not None and index != index_again:
        problems.append(f"{folder.name}: dedupe_index.json differs from the index re-derived "
                        "from the run's records")
    return problems


def _memo_rows(folder: Path) -> dict[str, Any] | None:
    from reviewpipe.screen import MEMO

    path = folder / MEMO
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()[1:]  # after the code's key
    return {entry["id"]: (entry["inputs"], entry["row"])
            for entry in map(json.loads, filter(None, lines))}


def _index_body(folder: Path) -> dict[str, Any] | None:
    from reviewpipe.dedupe_update import INDEX

    path = folder / INDEX
    if not path.is_file():
        return None
    index = json.loads(path.read_text(encoding="utf-8"))
    index.pop("key", None)
    return index


def _carried_from(paths: ReviewPaths, manifest: dict[str, Any]) -> Run | None:
    """The run an update built on (verified on its own), or None for a full run."""
    carried = manifest["stages"].get("dedupe", {}).get("carried_from")
    return open_run(paths, carried) if carried else None


def _decisions_by_members(folder: Path) -> dict[frozenset[str], tuple[str, str]]:
    import csv

    with (folder / "clusters.csv").open(encoding="utf-8", newline="") as handle:
        members: dict[str, set[str]] = {}
        for row in csv.DictReader(handle):
            members.setdefault(row["cluster_id"], set()).add(row["record_id"])
    with (folder / "screening.csv").open(encoding="utf-8", newline="") as handle:
        # A screened cluster with no records (a forged clusters.csv) is reported, not a crash.
        return {frozenset(members.get(r["cluster_id"], ())): (
            r["cluster_id"], f"{r['machine_decision']}/{r['machine_reason']}")
            for r in csv.DictReader(handle)}
