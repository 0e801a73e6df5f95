"""The SQLite store: runs, jobs, one transaction per result, samples, schema versions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import harness.store
from harness.errors import SchemaVersionError, StoreError
from devices.agent.spec import MeasureSettings
from harness.records import Job, JobResult, JobSettings
from harness.store.schema import SCHEMA_VERSION


def job(model: str = "m", variant: str = "fp32") -> Job:
    return Job(model, variant, "local", "onnxruntime", JobSettings(MeasureSettings(min_iters=10)))


def ok_result(p50: float = 1.5, n: int = 1000) -> JobResult:
    return JobResult(
        "ok",
        metrics={"p50_ms": p50, "p99_ms": p50 * 2, "cv": 0.01, "accuracy": 0.97, "precision": "f32", "n_iters": n},
        samples_ns=np.arange(n, dtype=np.int64) * 1000 + 1_000_000,
        variant={"variant_id": "v1", "model": "m", "chain": "fp32", "size_bytes": 1234, "params": 10, "macs": 100,
                 "sparsity": 0.0, "precision": "fp32", "host_accuracy": 0.98, "tool_versions": {"onnx": "1.23"}},
        facts={"python": "3.11", "hostname": "h"},
    )


def test_round_trip_results_and_samples(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={"a": 1}, tag="nightly")
        ids = st.add_jobs(run, [job("m"), job("m", "int8-dynamic")])
        first, second = ids[job("m").key], ids[job("m", "int8-dynamic").key]
        st.record(first, ok_result())
        st.record(second, JobResult.failed("ArtifactIncompatible: bad model"))
        df = st.results(run=run)
        assert set(harness.store.RESULT_COLUMNS) <= set(df.columns)
        row_ok, row_bad = df.iloc[0], df.iloc[1]
        assert row_ok.status == "ok" and row_ok.p50_ms == 1.5 and row_ok.size_bytes == 1234 and row_ok.tag == "nightly"
        assert row_bad.status == "failed" and "bad model" in row_bad.error and np.isnan(row_bad.p50_ms)
        samples = st.samples(run=run)
        assert len(samples) == 1000 and samples.latency_ms.iloc[0] == pytest.approx(1.0)
        assert st.facts(run) == {"local": {"python": "3.11", "hostname": "h"}}
        assert row_ok.host_accuracy == 0.98 and row_ok.weights_precision == "fp32" and row_ok.variant_id == "v1"
        variants = st.variants()
        assert len(variants) == 1 and variants.iloc[0].tool_versions == {"onnx": "1.23"}
        runs = st.runs()
        assert runs.iloc[0].ok == 1 and runs.iloc[0].failed == 1


def test_add_jobs_is_idempotent_for_resume(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        a = st.add_jobs(run, [job("m")])
        b = st.add_jobs(run, [job("m"), job("n")])
        assert a[job("m").key] == b[job("m").key] and len(b) == 2
        assert [status for _, _, status in st.jobs(run)] == ["pending", "pending"]


def test_two_runs_in_one_second_drawing_the_same_id_both_get_stored(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A run id is the second plus 4 hex digits: a burst of runs can draw one twice (the gate's
    tests create hundreds a second); the store draws again instead of failing the sweep."""
    import harness.store.store as store_module

    drawn = iter(["20261123-000000-abcd", "20261123-000000-abcd", "20261123-000000-abcd", "20261123-000000-beef"])
    monkeypatch.setattr(store_module, "new_run_id", lambda now=None: next(drawn))
    with harness.store.open(tmp_path / "h.db") as st:
        first, second = st.create_run(suite="s", config={}), st.create_run(suite="s", config={})
        assert (first, second) == ("20261123-000000-abcd", "20261123-000000-beef")
        assert set(st.runs().run) == {first, second}


def test_resolve_run(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        with pytest.raises(StoreError, match="harness sweep"):
            st.resolve_run()
        a = st.create_run(suite="s", config={}, tag="x")
        b = st.create_run(suite="s", config={})
        assert st.resolve_run() == b and st.resolve_run("latest", tag="x") == a
        assert st.resolve_run(a) == a
        with pytest.raises(StoreError, match="no run"):
            st.resolve_run("1999")
        with pytest.raises(StoreError, match="ambiguous"):
            st.resolve_run(a[:4])


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    harness.store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError, match="upgrade"):
        harness.store.open(path)


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "h.db"
    bad.write_text("hello, not sqlite " * 100)
    with pytest.raises(StoreError):
        harness.store.open(bad)


def test_sigkill_loses_nothing_reported(tmp_path: Path) -> None:
    """A writer killed mid-run keeps every job it recorded; the next open reads them."""
    db = tmp_path / "h.db"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        import numpy as np
        import harness.store
        from harness.records import Job, JobResult
        st = harness.store.open({str(db)!r})
        run = st.create_run(suite="s", config={{}})
        jobs = [Job(f"m{{i}}", "fp32", "local", "onnxruntime") for i in range(5)]
        ids = st.add_jobs(run, jobs)
        for j in jobs[:3]:
            st.record(ids[j.key], JobResult("ok", metrics={{"p50_ms": 1.0}}, samples_ns=np.ones(10, dtype=np.int64)))
        print("recorded", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9 and "recorded" in proc.stdout
    with harness.store.open(db) as st:
        df = st.results()
        assert (df.status == "ok").sum() == 3 and (df.status == "pending").sum() == 2
        assert len(st.samples()) == 30


def test_a_v1_store_is_migrated_and_keeps_its_results(tmp_path: Path) -> None:
    """Schema v2 (pools) adds the measuring board and a run's down boards to a v1 database in place."""
    from harness.store.schema import V1

    path = tmp_path / "h.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"BEGIN;\n{V1}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.execute("INSERT INTO runs (id, suite, config_json, started) VALUES ('r1', 's', '{}', 0)")
    conn.execute("INSERT INTO jobs (run_id, key, model, variant, device, runtime, settings_json, status)"
                 " VALUES ('r1', 'k', 'm', 'fp32', 'local', 'onnxruntime', '{}', 'ok')")
    conn.commit()
    conn.close()
    with harness.store.open(path) as st:
        df = st.results(run="r1")
        assert len(df) == 1 and df.iloc[0].device == "local" and df.iloc[0].board is None
        run = st.create_run(suite="s", config={})
        jid = st.add_jobs(run, [job()])[job().key]
        st.job_started(jid, "board-7")
        st.record(jid, ok_result())
        st.finish_run(run, "ok", {"board-9": "ConnectError: refused"})
        assert st.results(run=run).iloc[0].board == "board-7"
        assert st.facts(run) == {"board-7": {"python": "3.11", "hostname": "h"}}
        assert st.run_info(run)["down"] == {"board-9": "ConnectError: refused"}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2


def test_prune_keeps_the_newest_runs_of_each_tag_and_never_a_running_one(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        runs = {}
        for i, tag in enumerate(["nightly", "nightly", "ci", "nightly", None, "ci"]):
            run = st.create_run(suite="s", config={}, tag=tag)
            jid = st.add_jobs(run, [job()])[job().key]
            st.record(jid, ok_result())
            st.finish_run(run, "ok")
            runs[i] = run
            time.sleep(0.002)
        going = st.create_run(suite="s", config={}, tag="nightly")  # a sweep writing right now
        deleted = st.prune(keep=1)
        assert sorted(deleted) == sorted([runs[0], runs[1], runs[2]])
        left = set(st.runs().run)
        assert left == {runs[3], runs[4], runs[5], going}
        assert st._conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 3  # cascaded with their runs
        assert st.prune(keep=0, tag="ci") == [runs[5]]


def test_readers_are_not_blocked_by_a_writer_mid_transaction(tmp_path: Path) -> None:
    """The dashboard reads while a sweep writes (WAL): it sees committed jobs, never waits."""
    db = tmp_path / "h.db"
    with harness.store.open(db) as st:
        run = st.create_run(suite="s", config={})
        jid = st.add_jobs(run, [job("m"), job("n")])[job("m").key]
        st.record(jid, ok_result())
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE jobs SET status='ok' WHERE status='pending'")  # uncommitted
    try:
        start = time.monotonic()
        with harness.store.open(db) as reader:
            df = reader.results(run=run)
            assert sorted(df.status) == ["ok", "pending"]  # the uncommitted change is invisible
        assert time.monotonic() - start < 2
    finally:
        writer.execute("ROLLBACK")
        writer.close()


class _StaleVersion(sqlite3.Connection):
    """A connection whose first read of the schema version is from before another process
    migrated the store (the race: both read v1, the other one migrates first)."""

    stale: int | None = 1

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        if sql == "PRAGMA user_version" and self.stale is not None:
            stale, self.stale = self.stale, None
            return super().execute(f"SELECT {stale}")
        return super().execute(sql, *args)


def test_two_processes_migrating_one_old_store_both_open_it(tmp_path: Path) -> None:
    from harness.store.schema import SCHEMA_VERSION, V1, migrate

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN;\n{V1}\nPRAGMA user_version = 1;\nCOMMIT;")
    conn.close()
    harness.store.open(path).close()  # the first process migrates it all the way
    late = sqlite3.connect(path, isolation_level=None, factory=_StaleVersion)
    migrate(late, str(path))  # the second read v1 before that: its steps find them done, and it goes on
    assert late.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    late.close()


def test_prune_chooses_what_to_delete_under_its_write_lock(tmp_path: Path) -> None:
    """A run reopened by a resuming sweep (status 'running') between prune's choice and its delete
    would be lost: the choice and the delete are one transaction, so the resume waits or wins."""
    with harness.store.open(tmp_path / "h.db") as st:
        runs = [st.create_run(suite="s", config={}, tag="n") for _ in range(3)]
        for r in runs:
            st.finish_run(r, "ok")
        statements: list[str] = []
        st._conn.set_trace_callback(statements.append)
        assert len(st.prune(keep=1, tag="n")) == 2
        begin = statements.index("BEGIN IMMEDIATE")
        select = next(i for i, s in enumerate(statements) if s.startswith("SELECT id, coalesce(tag"))
        assert begin < select < statements.index("COMMIT", select)
