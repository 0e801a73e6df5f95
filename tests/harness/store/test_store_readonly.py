"""Read-only commands (report, gate, runs list) never migrate a store, never switch it to WAL, and
refuse a file that is not a results store with exit 2, leaving it byte for byte as it was."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

import harness.store
from harness.cli import main
from harness.store.schema import MIGRATIONS, READABLE_FROM, SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))
from gate_testlib import add_run  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_commands(db: Path, tmp_path: Path) -> list[list[str]]:
    store = ["--store", str(db)]
    return [["runs", "list", *store], ["runs", "list", "--json", *store], ["report", "-o", str(tmp_path / "r.html"), *store],
            ["report", "--history", "--tag", "nightly", "-o", str(tmp_path / "h.html"), *store],
            ["gate", "--candidate", "latest", "--baseline", "nightly", *store]]


def _foreign(path: Path, user_version: int = 0, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('mine, not a harness store')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()


FOREIGN = {
    "text": lambda p: p.write_text("name: not a database\n" * 50),
    "empty": lambda p: p.write_bytes(b""),
    "sqlite": lambda p: _foreign(p),
    "sqlite-versioned": lambda p: _foreign(p, user_version=3),
    "sqlite-wal": lambda p: _foreign(p, wal=True),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_a_file_that_is_not_a_store_is_refused_and_left_unchanged(tmp_path: Path, kind: str, capsys) -> None:  # noqa: ANN001
    db = tmp_path / "mine.db"
    FOREIGN[kind](db)
    before = sha256(db)
    side = {p.name for p in tmp_path.iterdir()}
    prune = [["runs", "prune", "--keep", "1", "--store", str(db)]] if kind != "empty" else []  # a write command
    for argv in [*read_commands(db, tmp_path), *prune]:  # (an empty file is a new store to a write command)
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert str(db) in err and "not a results store" in err and "\n" not in err and "Traceback" not in err, err
        assert sha256(db) == before, argv
    if kind.startswith("sqlite"):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == ("wal" if kind == "sqlite-wal" else "delete")
        assert conn.execute("SELECT body FROM notes").fetchall() == [("mine, not a harness store",)]
        conn.close()
    if kind != "sqlite-wal":  # a read-only open of a WAL file may leave its -shm beside it; no other file may appear
        assert {p.name for p in tmp_path.iterdir()} - {"r.html", "h.html"} == side


def test_a_sweep_refuses_a_foreign_database_before_switching_it_to_wal(tmp_path: Path) -> None:
    """Opening to write checks first: a foreign SQLite file is not switched to WAL nor given tables."""
    from harness.errors import StoreError

    db = tmp_path / "mine.db"
    _foreign(db)
    before = sha256(db)
    with pytest.raises(StoreError, match="not a results store \\(tables: notes; user_version 0\\)"):
        harness.store.open(db)
    assert sha256(db) == before and not (tmp_path / "mine.db-wal").exists()


def _store(tmp_path: Path) -> tuple[Path, str, str]:
    db = tmp_path / "h.db"
    rng = np.random.default_rng(3)
    with harness.store.open(db) as st:
        base = add_run(st, rng)
        cand = add_run(st, rng)
    return db, base, cand


def _rollback_journal(db: Path) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    conn.close()


def _version(db: Path) -> tuple[int, str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = conn.execute("PRAGMA user_version").fetchone()[0], conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    return out


def test_read_commands_leave_a_store_as_it_is(tmp_path: Path) -> None:
    """A current store in rollback-journal mode stays so: report and runs list change no byte;
    the gate adds its verdicts and nothing else."""
    db, base, cand = _store(tmp_path)
    _rollback_journal(db)
    before = sha256(db)
    for argv in read_commands(db, tmp_path)[:4]:
        assert main(argv) == 0, argv
        assert sha256(db) == before and _version(db) == (SCHEMA_VERSION, "delete"), argv
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db)]) == 0
    assert _version(db) == (SCHEMA_VERSION, "delete") and not (tmp_path / "h.db-wal").exists()
    with harness.store.open(db, readonly=True) as st:
        assert set(st.verdicts(run=cand).candidate) == {cand}


def _downgrade(db: Path, version: int) -> None:
    """The store as harness v``version`` wrote it: the later steps' columns dropped (SQLite >= 3.35)."""
    drops = {9: [("results", c) for c in ("scenario", "batch", "inflight", "resolution")] + [("verdicts", "point")],
             8: [("jobs", "power_mode")],
             7: [("runs", c) for c in ("writer_host", "writer_pid", "writer_token", "writer_since", "heartbeat")],
             6: [("variants", "synthetic"), ("variants", "notes_json")]}
    conn = sqlite3.connect(db, isolation_level=None)
    for step in range(SCHEMA_VERSION, version, -1):
        for table, column in drops[step]:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def test_a_store_one_schema_back_is_read_without_migrating_it(tmp_path: Path) -> None:
    db, base, cand = _store(tmp_path)
    _downgrade(db, READABLE_FROM)
    _rollback_journal(db)
    before = sha256(db)
    for argv in read_commands(db, tmp_path)[:4]:
        assert main(argv) == 0, argv
        assert sha256(db) == before and _version(db) == (READABLE_FROM, "delete"), argv
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db)]) == 0
    assert _version(db) == (READABLE_FROM, "delete")


def test_an_older_store_is_refused_with_how_to_migrate_it_then_migrated(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db = tmp_path / "h.db"
    conn = sqlite3.connect(db)
    for version, step in enumerate(MIGRATIONS[:5], start=1):
        conn.executescript(f"BEGIN;\n{step}\nPRAGMA user_version = {version};\nCOMMIT;")
    conn.execute("INSERT INTO runs (id, suite, config_json, started, status) VALUES ('r5', 's', '{}', 0, 'ok')")
    conn.commit()
    conn.close()
    before = sha256(db)
    for argv in read_commands(db, tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "results store has schema v5" in err and f"harness store migrate --store {db}" in err and "\n" not in err
        assert sha256(db) == before and _version(db) == (5, "delete")
    assert main(["store", "migrate", "--store", str(db)]) == 0
    assert f"migrated from schema v5 to v{SCHEMA_VERSION}" in capsys.readouterr().out
    assert _version(db) == (SCHEMA_VERSION, "wal")
    assert main(["runs", "list", "--json", "--store", str(db)]) == 0
    assert '"run":"r5"' in capsys.readouterr().out
    assert main(["store", "migrate", "--store", str(db)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_read_only_store_refuses_to_write_but_for_the_verdicts(tmp_path: Path) -> None:
    from harness.errors import StoreError

    db, _, _ = _store(tmp_path)
    with harness.store.open(db, readonly=True) as st:
        with pytest.raises(StoreError, match="read-only"):
            st.create_run(suite="s", config={})
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            st._conn.execute("DELETE FROM runs")  # the connection itself cannot write either


def test_a_gate_that_cannot_store_its_verdicts_still_gives_them(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    """The store locked by another process past the wait (or on read-only media): the verdicts stand."""
    from harness.gate import run_gate

    db, base, cand = _store(tmp_path)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with harness.store.open(db, readonly=True) as st:
            st.busy_timeout_s = 0.2
            result = run_gate(st, cand, base)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.verdicts and result.count("regression") == 0
    assert "the gate's verdicts were not stored" in caplog.text and "database is locked" in caplog.text
    with harness.store.open(db, readonly=True) as st:
        assert st.verdicts(run=cand).empty
