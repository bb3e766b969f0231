"""The SQLite store: migrations of an existing file, and carrying a run's rows to the next."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reviewpipe.store import MIGRATIONS, SCHEMA_VERSION, Store

RECORD = '{"record_id": "pubmed:1", "title": "Dry needling"}'


def _store_at(path: Path, version: int) -> None:
    """A store file as reviewpipe left it at schema ``version``."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, migrate in MIGRATIONS[:version]:
        migrate(db)
        db.execute("INSERT INTO migrations VALUES (?, 'then')", (name,))
    db.execute(f"PRAGMA user_version = {version}")
    db.close()


def test_records_of_an_old_store_keep_their_json_once(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    _store_at(path, 3)
    with sqlite3.connect(path) as db:
        for run in ("r1", "r2"):
            db.execute("INSERT INTO records VALUES (?, 'pubmed:1', 'pubmed', '1', NULL, "
                       "'Dry needling', 2020, ?)", (run, RECORD))
    with Store.open(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.db.execute("SELECT run_id, json FROM record_rows ORDER BY 1").fetchall() \
            == [("r1", RECORD), ("r2", RECORD)]
        assert store.db.execute("SELECT COUNT(*) FROM record_json").fetchone()[0] == 1
        # New rows are written the same way: the JSON once, a hash per run.
        store.replace_rows("records", "r3", [("pubmed:1", "pubmed", "1", None, "Dry needling",
                                              2020, RECORD)])
        assert store.db.execute("SELECT COUNT(*) FROM record_json").fetchone()[0] == 1
        assert store.db.execute("SELECT json FROM record_rows WHERE run_id = 'r3'"
                                ).fetchone() == (RECORD,)


def test_carry_rows_copies_replaces_and_drops(tmp_path: Path) -> None:
    with Store.open(tmp_path / "review.sqlite") as store:
        store.replace_rows("clusters", "old", [("a", "C1", "S1"), ("b", "C1", "S1"),
                                               ("c", "C2", "S2")])
        store.carry_rows("clusters", "old", "new", "record_id",
                         [("b", "C3", "S3"), ("d", "C4", "S4")], dropped=["c"])
        rows = store.db.execute("SELECT record_id, cluster_id FROM clusters WHERE run_id = "
                                "'new' ORDER BY 1").fetchall()
        assert rows == [("a", "C1"), ("b", "C3"), ("d", "C4")]
        # The old run's rows are left as they were; a second carry replaces the first.
        assert len(store.db.execute("SELECT * FROM clusters WHERE run_id = 'old'").fetchall()) \
            == 3
        store.carry_rows("clusters", "old", "new", "record_id", [])
        assert len(store.db.execute("SELECT * FROM clusters WHERE run_id = 'new'").fetchall()) \
            == 3
        with pytest.raises(ValueError, match="no column"):
            store.carry_rows("clusters", "old", "new", "nope", [])
