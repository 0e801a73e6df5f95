"""A coordinator killed with SIGKILL mid-sweep loses nothing it stored, and --resume
finishes exactly the missing jobs: one result per job, none measured twice."""

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


def finished_jobs(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM jobs WHERE status='ok'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_then_resume(tmp_path: Path, artifact_cache) -> None:  # noqa: ANN001
    cache = str(artifact_cache.root.parent)
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: resume
        models: [{{builtin: digits-cnn}}]
        variants: {VARIANTS}
        runtimes: [sleep]
        runtime_options: {{sleep: {{latency_ms: 2}}}}
        measure: {{warmup_iters: 2, warmup_s: 0.0, min_iters: 10, min_s: 1.5, timeout_s: 60, quiet: null}}
        """))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp_path / 'board'}, runtimes: [sleep]}}\n")
    db = tmp_path / "h.db"
    argv = ["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", cache, "--no-report", "-q"]
    # The first coordinator runs as its own process group, so the kill takes its Ray with it.
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *argv], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while finished_jobs(db) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_jobs(db)
    assert 1 <= before < len(VARIANTS), "the kill should land mid-sweep"
    with harness.store.open(db) as st:
        run = st.resolve_run()
        kept = st.results(run=run).query("status == 'ok'")[["job_id", "finished", "p50_ms"]]

    assert main([*argv, "--resume", run[:12]]) == 0
    with harness.store.open(db) as st:
        df = st.results()
        samples = st.samples()
        assert st.runs().run.tolist() == [run]  # resumed, not a new run
    assert len(df) == len(VARIANTS) and set(df.status) == {"ok"} and set(df.variant) == set(VARIANTS)
    assert samples.groupby("job_id").size().to_dict() == df.set_index("job_id").n_iters.astype(int).to_dict()
    # What was stored before the kill is untouched: not re-measured.
    again = df.set_index("job_id").loc[kept.job_id]
    assert again.finished.tolist() == kept.finished.tolist() and again.p50_ms.tolist() == kept.p50_ms.tolist()


def test_resume_with_another_suite_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with harness.store.open(db) as st:
        st.create_run(suite="other", config={"suite": {"name": "other"}, "devices": []})
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: mine\nmodels: [{builtin: digits-cnn}]\n")
    assert main(["sweep", str(suite), "--store", str(db), "--resume", "latest", "--no-report"]) == 2


def test_a_run_from_an_older_harness_stays_resumable() -> None:
    from harness.coordinator.sweep import _same_plan

    old = {"suite": {"name": "s", "measure": {"min_s": 3}}, "devices": [{"name": "a"}]}
    new = {"suite": {"name": "s", "measure": {"min_s": 3}, "report": None, "faults": {}}, "devices": [{"name": "a"}]}
    assert _same_plan(old, new)
    assert not _same_plan(old, {**new, "suite": {**new["suite"], "report": {"latency_budget_ms": 5}}})
    assert not _same_plan(old, {**new, "devices": [{"name": "b"}]})
    assert not _same_plan(new, old)  # a key the stored plan has and the current one lacks
