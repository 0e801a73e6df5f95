"""Ctrl-C on a real sweep (the CLI in its own process, SIGINT to it alone). The first stops
scheduling: the jobs running then finish and are stored, the run is 'interrupted', the CLI exits
130 printing the resume command. A second stops at once, leaving the store consistent. Either
way the gate refuses the run and --resume finishes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import harness.store
from harness.cli import main

pytestmark = pytest.mark.usefixtures("ray_local")

VARIANTS = ["fp32", "int8-dynamic", "fp16", "int8-static"]


def _statuses(db: Path) -> dict[int, str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return dict(conn.execute("SELECT id, status FROM jobs").fetchall())
    except sqlite3.Error:
        return {}


def _start(tmp_path: Path, cache: str) -> tuple[subprocess.Popen, list[str], Path]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: interrupt
        models: [{{builtin: digits-cnn}}]
        variants: {VARIANTS}
        runtimes: [sleep]
        runtime_options: {{sleep: {{latency_ms: 2}}}}
        measure: {{warmup_iters: 2, warmup_s: 0.0, min_iters: 10, min_s: 2.0, timeout_s: 60, quiet: null}}
        """))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp_path / 'board'}, runtimes: [sleep]}}\n")
    db = tmp_path / "h.db"
    argv = ["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", cache, "--no-report",
            "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *argv], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while "ok" not in _statuses(db).values() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the sweep ended before the first job was stored"
    return proc, argv, db


def _finish_and_check(argv: list[str], db: Path, run: str, kept: dict[int, str]) -> None:
    assert main(["gate", "--candidate", run, "--baseline", run, "--store", str(db)]) == 1  # unfinished
    assert main([*argv, "--resume", run[:12]]) == 0
    with harness.store.open(db, readonly=True) as st:
        assert st.runs().run.tolist() == [run] and st.run_info(run)["status"] == "ok"
        df = st.results(run=run)
    assert len(df) == len(VARIANTS) and set(df.status) == {"ok"}
    assert all(df.set_index("job_id").loc[j, "status"] == "ok" for j in kept)


def test_first_ctrl_c_lets_running_jobs_land_then_exits_130(tmp_path: Path, artifact_cache) -> None:  # noqa: ANN001
    proc, argv, db = _start(tmp_path, str(artifact_cache.root.parent))
    try:
        running = [j for j, s in _statuses(db).items() if s == "running"]
        os.kill(proc.pid, signal.SIGINT)  # the coordinator alone, not its group
        out, err = proc.communicate(timeout=120)
    finally:
        with_group_killed(proc)
    assert proc.returncode == 130, err
    statuses = _statuses(db)
    assert "running" not in statuses.values()
    assert all(statuses[j] == "ok" for j in running)  # the job on the board at Ctrl-C was stored
    done = [j for j, s in statuses.items() if s == "ok"]
    assert 1 <= len(done) < len(VARIANTS)
    with harness.store.open(db, readonly=True) as st:
        run = st.resolve_run()
        assert st.run_info(run)["status"] == "interrupted"
    assert "stopping: no new job starts" in err
    assert f"interrupted: run {run} stopped with {len(VARIANTS) - len(done)} job(s) not run" in err
    assert f"--resume {run}" in err and "Traceback" not in err
    _finish_and_check(argv, db, run, {j: "ok" for j in done})


def test_second_ctrl_c_stops_at_once_leaving_the_store_consistent(tmp_path: Path, artifact_cache) -> None:  # noqa: ANN001
    proc, argv, db = _start(tmp_path, str(artifact_cache.root.parent))
    try:
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - t0
    finally:
        with_group_killed(proc)
    assert proc.returncode == 130, err
    assert took < 30  # Ray's shutdown included; not the remaining jobs
    with harness.store.open(db, readonly=True) as st:
        run = st.resolve_run()
        assert st.run_info(run)["status"] == "interrupted"
        assert st._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    statuses = _statuses(db)
    assert "running" not in statuses.values()
    assert f"stopped at once: run {run}" in err and f"--resume {run}" in err and "Traceback" not in err
    _finish_and_check(argv, db, run, {j: s for j, s in statuses.items() if s == "ok"})


def with_group_killed(proc: subprocess.Popen) -> None:
    """The coordinator's own Ray, if it outlived it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
