"""The review's SQLite store: runs, records, clusters, screening and the append-only decision log.

The schema version is stamped in ``PRAGMA user_version``; migrations are named functions run in
a transaction and recorded in ``migrations``. An unknown version is refused, never repaired.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reviewpipe.errors import StaleStore


def _v1(db: sqlite3.Connection) -> None:
    # One execute per statement: executescript() would COMMIT the migration's transaction.
    for statement in _V1_SQL:
        db.execute(statement)


_V1_SQL = [
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, protocol_sha256 TEXT NOT NULL, live INTEGER NOT NULL)""",
    """CREATE TABLE searches (
        run_id TEXT NOT NULL, source TEXT NOT NULL, database TEXT, query TEXT,
        translation TEXT, count INTEGER, mindate TEXT, maxdate TEXT, datetype TEXT,
        searched_at TEXT, file TEXT, PRIMARY KEY (run_id, source))""",
    """CREATE TABLE records (
        run_id TEXT NOT NULL, record_id TEXT NOT NULL, source TEXT NOT NULL,
        pmid TEXT, doi TEXT, title TEXT, year INTEGER, json TEXT NOT NULL,
        PRIMARY KEY (run_id, record_id))""",
    """CREATE TABLE clusters (
        run_id TEXT NOT NULL, record_id TEXT NOT NULL, cluster_id TEXT NOT NULL,
        study_id TEXT NOT NULL, PRIMARY KEY (run_id, record_id))""",
    """CREATE TABLE screening (
        run_id TEXT NOT NULL, cluster_id TEXT NOT NULL, decision TEXT NOT NULL,
        reason TEXT NOT NULL, design TEXT, p_rct REAL, decided_by TEXT, evidence TEXT,
        PRIMARY KEY (run_id, cluster_id))""",
    # Append-only: every machine or human decision, chained by hash.
    """CREATE TABLE decision_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, subject TEXT NOT NULL,
        stage TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT, evidence TEXT,
        actor TEXT NOT NULL, inputs_sha256 TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
    """CREATE TRIGGER decision_log_no_update BEFORE UPDATE ON decision_log
        BEGIN SELECT RAISE(ABORT, 'decision_log is append-only'); END""",
    """CREATE TRIGGER decision_log_no_delete BEFORE DELETE ON decision_log
        BEGIN SELECT RAISE(ABORT, 'decision_log is append-only'); END""",
]


def _v2(db: sqlite3.Connection) -> None:
    # Every successful scheduled search, so the next one starts where it ended.
    db.execute("""CREATE TABLE updates (
        searched_at TEXT NOT NULL, mindate TEXT NOT NULL, maxdate TEXT NOT NULL,
        count INTEGER NOT NULL, new_records INTEGER NOT NULL, run_id TEXT,
        needs_human INTEGER NOT NULL)""")


def _v3(db: sqlite3.Connection) -> None:
    # A run's entries and a record's entries are read without scanning the whole history.
    db.execute("CREATE INDEX decision_log_run ON decision_log (run_id, seq)")
    db.execute("CREATE INDEX decision_log_subject ON decision_log (subject, seq)")


def _v4(db: sqlite3.Connection) -> None:
    # A record's JSON once, however many runs hold it: each run copied every record's JSON, so
    # a daily update of a 20,000-record review added 25 MB to the store and 0.2 s to the run.
    db.execute("CREATE TABLE record_json (sha256 TEXT PRIMARY KEY, json TEXT NOT NULL)")
    db.execute("""CREATE TABLE records_v4 (
        run_id TEXT NOT NULL, record_id TEXT NOT NULL, source TEXT NOT NULL,
        pmid TEXT, doi TEXT, title TEXT, year INTEGER,
        json_sha256 TEXT NOT NULL REFERENCES record_json (sha256),
        PRIMARY KEY (run_id, record_id))""")
    rows = db.execute("SELECT run_id, record_id, source, pmid, doi, title, year, json "
                      "FROM records")
    while batch := rows.fetchmany(1000):
        _insert_records(db, "records_v4", batch)
    db.execute("DROP TABLE records")
    db.execute("ALTER TABLE records_v4 RENAME TO records")
    # For SQL users: the records with their JSON, as the table held them before.
    db.execute("""CREATE VIEW record_rows AS SELECT r.run_id, r.record_id, r.source, r.pmid,
        r.doi, r.title, r.year, j.json FROM records r JOIN record_json j
        ON j.sha256 = r.json_sha256""")


def _insert_records(db: sqlite3.Connection, table: str, rows: Iterable[tuple[Any, ...]]
                    ) -> None:
    """Insert ``(run_id, record_id, source, pmid, doi, title, year, json)`` rows, each JSON
    once in ``record_json``."""
    rows = [(*row[:-1], hashlib.sha256(row[-1].encode("utf-8")).hexdigest(), row[-1])
            for row in rows]
    db.executemany("INSERT OR IGNORE INTO record_json VALUES (?, ?)",
                   ((row[-2], row[-1]) for row in rows))
    db.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (row[:-1] for row in rows))


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("0001_initial", _v1),
    ("0002_updates", _v2),
    ("0003_log_indexes", _v3),
    ("0004_record_json", _v4),
]
SCHEMA_VERSION = len(MIGRATIONS)
GENESIS = "0" * 64


class Store:
    """A review's SQLite store. Open with ``Store.open(path)``; it migrates a new file."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> Store:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        store = cls(db, path)
        store._migrate()
        return store

    @property
    def raw_dir(self) -> Path:
        """Raw responses live beside the store, shared by runs, so a killed search resumes."""
        return self.path.parent / "raw"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StaleStore(
                f"{self.path}: schema version {version} is newer than this reviewpipe knows "
                f"({SCHEMA_VERSION}). Upgrade reviewpipe, or move the file aside to start clean."
            )
        if version == 0:
            self.db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, "
                            "applied_at TEXT NOT NULL)")
        for number, (name, migrate) in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            with self.transaction():
                migrate(self.db)
                self.db.execute("INSERT INTO migrations VALUES (?, ?)", (name, _now()))
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # runs -------------------------------------------------------------------------------
    def start_run(self, run_id: str, protocol_sha256: str, live: bool) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, NULL, 'running', ?, ?)",
                       (run_id, _now(), protocol_sha256, int(live)))

    def finish_run(self, run_id: str, status: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?",
                       (_now(), status, run_id))

    def run_status(self, run_id: str) -> str | None:
        row = self.db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    # stage tables -----------------------------------------------------------------------
    def replace_rows(self, table: str, run_id: str, rows: Iterable[tuple[Any, ...]]) -> int:
        """Replace one run's rows of a stage table (a stage rerun replaces its own output)."""
        if table not in ("searches", "records", "clusters", "screening"):
            raise ValueError(f"not a stage table: {table}")
        rows = list(rows)
        with self.transaction() as db:
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self._insert(table, run_id, rows)
        return len(rows)

    def _insert(self, table: str, run_id: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if table == "records":  # (record_id, source, pmid, doi, title, year, json)
            _insert_records(self.db, table, ((run_id, *row) for row in rows))
            return
        marks = ", ".join("?" * (len(rows[0]) + 1))
        self.db.executemany(f"INSERT INTO {table} VALUES ({marks})",
                            [(run_id, *row) for row in rows])

    def carry_rows(self, table: str, from_run: str, run_id: str, key: str,
                   rows: Iterable[tuple[Any, ...]], dropped: Iterable[str] = ()) -> int:
        """Replace ``run_id``'s rows of a stage table with ``from_run``'s, except those whose
        ``key`` column is given a new row in ``rows`` (same columns as :meth:`replace_rows`)
        or is in ``dropped``.

        The copy is one SQL statement, so an update writes what changed and SQLite copies
        the rest, instead of every row passing through Python again.
        """
        if table not in ("searches", "records", "clusters", "screening"):
            raise ValueError(f"not a stage table: {table}")
        columns = [r[1] for r in self.db.execute(f"PRAGMA table_info({table})")]
        if key not in columns:
            raise ValueError(f"{table} has no column {key}")
        rows = list(rows)
        rest = ", ".join(columns[1:])
        with self.transaction() as db:
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute("CREATE TEMP TABLE IF NOT EXISTS carry_keys (k TEXT PRIMARY KEY)")
            db.execute("DELETE FROM carry_keys")
            db.executemany("INSERT OR IGNORE INTO carry_keys VALUES (?)",
                           ((row[columns.index(key) - 1],) for row in rows))
            db.executemany("INSERT OR IGNORE INTO carry_keys VALUES (?)",
                           ((k,) for k in dropped))
            db.execute(f"INSERT INTO {table} SELECT ?, {rest} FROM {table} WHERE run_id = ? "
                       f"AND {key} NOT IN (SELECT k FROM carry_keys)", (run_id, from_run))
            self._insert(table, run_id, rows)
            db.execute("DELETE FROM carry_keys")
        return len(rows)

    # decision log -----------------------------------------------------------------------
    def append_decisions(self, run_id: str, entries: Iterable[dict[str, Any]]) -> list[dict]:
        """Append entries to the hash-chained decision log; returns them with their hashes."""
        written: list[dict] = []
        with self.transaction() as db:
            row = db.execute("SELECT hash FROM decision_log ORDER BY seq DESC LIMIT 1").fetchone()
            prev = row[0] if row else GENESIS
            for entry in entries:
                body = {
                    "run_id": run_id, "subject": entry["subject"], "stage": entry["stage"],
                    "decision": entry["decision"], "reason": entry.get("reason", ""),
                    "evidence": entry.get("evidence", ""), "actor": entry["actor"],
                    "inputs_sha256": entry.get("inputs_sha256", ""), "prev_hash": prev,
                }
                digest = entry_hash(body)
                db.execute(
                    "INSERT INTO decision_log (run_id, subject, stage, decision, reason, evidence,"
                    " actor, inputs_sha256, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (*body.values(), digest),
                )
                written.append({**body, "hash": digest})
                prev = digest
        return written

    def record_update(self, *, searched_at: str, mindate: str, maxdate: str, count: int,
                      new_records: int, run_id: str | None, needs_human: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO updates VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (searched_at, mindate, maxdate, count, new_records, run_id, needs_human))

    def last_update(self) -> dict[str, Any] | None:
        cursor = self.db.execute("SELECT * FROM updates ORDER BY searched_at DESC, rowid DESC "
                                 "LIMIT 1")
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row, strict=True)) if row else None

    def decision_log(self, *, run_id: str | None = None,
                     subjects: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Log entries in order: all, or one run's, or those about some subjects."""
        where, args = [], []
        if run_id is not None:
            where.append("run_id = ?")
            args.append(run_id)
        if subjects is not None:
            wanted = sorted(set(subjects))
            where.append(f"subject IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        sql = "SELECT * FROM decision_log" + (" WHERE " + " AND ".join(where) if where else "")
        cursor = self.db.execute(sql + " ORDER BY seq", args)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]


def entry_hash(body: dict[str, Any]) -> str:
    """SHA-256 of a decision-log entry's canonical JSON (which includes the previous hash)."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
