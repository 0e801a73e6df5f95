"""SQLite failing under a sweep (disk full, locked past the busy timeout) is a one-line
StoreWriteError with exit 4, not a traceback: what was committed stays, the run resumes.
The failures are real: a page limit the database reaches (SQLITE_FULL), a lock another
connection holds (SQLITE_BUSY). Also: the durability the store is opened with."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import harness.store
from devices.agent.spec import MeasureSettings
from harness.cli import _guarded
from harness.coordinator.progress import SweepProgress
from harness.coordinator.sweep import SweepOptions, SweepOutcome, _Context, _finish, resume_command, stopping_resumable
from harness.errors import StoreWriteError
from harness.records import Job, JobResult, JobSettings
from harness.store.store import environmental


def jobs() -> list[Job]:
    return [Job(f"m{i}", "fp32", "local", "onnxruntime", JobSettings(MeasureSettings(min_iters=10))) for i in range(3)]


def result(n: int) -> JobResult:
    return JobResult("ok", metrics={"p50_ms": 1.0, "n_iters": n}, samples_ns=np.random.default_rng(n).integers(
        1_000_000, 2_000_000, n))


def sweep_context(st: harness.store.Store, suite_path: str = "suites/my net.yaml") -> _Context:
    run = st.create_run(suite="s", config={})
    ids = st.add_jobs(run, jobs())
    opts = SweepOptions(suite_path=suite_path, inventory_path="inv.yaml")
    outcome = SweepOutcome(run, resume=resume_command(opts, st.path, run))
    return _Context(st, ids, run, outcome, SweepProgress(total=3, quiet=True), {j.key: [] for j in jobs()})


def test_disk_full_mid_sweep_stops_resumable_with_what_was_stored(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with harness.store.open(db) as st:
        ctx = sweep_context(st)
        first, second, third = jobs()
        with stopping_resumable(st, ctx.outcome):
            st.job_started(ctx.ids[first.key], "local")
            _finish(ctx, first, result(100))
        pages = st._conn.execute("PRAGMA page_count").fetchone()[0]
        st._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
        st.job_started(ctx.ids[second.key], "local")  # (an update in place needs no new page)
        with pytest.raises(StoreWriteError) as e, stopping_resumable(st, ctx.outcome):
            _finish(ctx, second, result(50_000))  # needs new pages: SQLITE_FULL at its insert
        message = str(e.value)
        assert e.value.exit_code == 4 and "\n" not in message
        assert message.startswith(f"cannot write results store {db}: database or disk is full (SQLITE_FULL); ")
        assert f"the 1 job(s) stored before stay and run {ctx.run_id} is left resumable: " in message
        assert message.endswith(f"harness sweep 'suites/my net.yaml' --inventory inv.yaml --store {db} "
                                f"--resume {ctx.run_id}")
        assert not st._conn.in_transaction  # rolled back whole
    with harness.store.open(db) as st:  # what was committed before is there; the failed job is not
        df = st.results(run=ctx.run_id).set_index("model")
        assert df.loc["m0", "status"] == "ok" and df.loc["m1", "status"] == "running" and df.loc["m2", "status"] == "pending"
        assert len(st.samples(run=ctx.run_id)) == 100
        assert st.run_info(ctx.run_id)["status"] == "running"
        assert st._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        st.reopen_run(ctx.run_id)  # resumable (its writer, this process, is not another live one)
        assert [status for _, _, status in st.jobs(ctx.run_id)] == ["ok", "pending", "pending"]
        st.record(ctx.ids[second.key], result(50_000))
        assert len(st.samples(run=ctx.run_id)) == 50_100


def test_a_lock_held_past_the_busy_timeout_stops_resumable_and_the_cli_says_so_in_one_line(tmp_path: Path,
                                                                                          capsys) -> None:  # noqa: ANN001
    db = tmp_path / "h.db"
    with harness.store.open(db) as st:
        ctx = sweep_context(st)
        first, second, _ = jobs()
        _finish(ctx, first, result(10))
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
        st._conn.execute("PRAGMA busy_timeout = 200")  # ... longer than the store waits (30 s in use)

        def sweep(args: argparse.Namespace) -> int:
            with stopping_resumable(st, ctx.outcome):
                _finish(ctx, second, result(10))
            return 0

        try:
            assert _guarded(sweep, argparse.Namespace()) == 4
        finally:
            other.execute("ROLLBACK")
            other.close()
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: cannot write results store") and "database is locked (SQLITE_BUSY)" in err
        assert f"--resume {ctx.run_id}" in err and "\n" not in err and "Traceback" not in err
        assert [status for _, _, status in st.jobs(ctx.run_id)] == ["ok", "pending", "pending"]


def test_a_bug_in_the_sql_is_not_passed_off_as_the_disks_fault(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError) as constraint:
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as no_column:
        conn.execute("SELECT nope FROM t")
    assert not environmental(constraint.value) and not environmental(no_column.value)
    conn.execute("PRAGMA max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    assert environmental(full.value)


def test_the_store_is_durable_on_purpose(tmp_path: Path) -> None:
    """WAL and synchronous=FULL: a stored job survives a power loss too (docs/results.md)."""
    with harness.store.open(tmp_path / "h.db") as st:
        assert st._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
