"""Ctrl-C during a sweep, without Ray: the first stops scheduling, the second stops at once;
either way the store stays consistent, the run is 'interrupted' and the gate treats it as
unfinished. (The whole sweep under a real SIGINT: tests/integration/test_interrupt.py.)"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import harness.store
from devices.agent.spec import MeasureSettings
from harness.coordinator.progress import SweepProgress
from harness.coordinator.sweep import (
    StopOnSigint, SweepOptions, SweepOutcome, _Context, _finish, resume_command, stopping_resumable,
)
from harness.errors import GateError, Interrupted
from harness.records import Job, JobResult, JobSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gate"))
from gate_testlib import add_run  # noqa: E402


def test_the_first_sigint_asks_to_stop_and_the_second_stops_at_once() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopOnSigint() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGINT)  # delivered to this, the main thread, before the next line
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_two_ctrl_cs_during_one_long_c_call_stop_at_once() -> None:
    """Python runs the handler once for both (the main thread was in C code, as in ray.wait):
    the wakeup pipe counts two."""
    import hashlib
    import threading
    import time

    def press_twice() -> None:
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    with StopOnSigint() as stop:
        presser = threading.Thread(target=press_twice)
        with pytest.raises(KeyboardInterrupt):
            presser.start()
            t0 = time.monotonic()
            hashlib.sha256(bytes(600_000_000)).digest()  # C code, no bytecode: the handler waits for its end
            assert time.monotonic() - t0 > 0.15, "the C call ended before both presses: this test proves nothing"
        presser.join()
        assert stop.requested


def test_a_second_ctrl_c_leaves_the_run_interrupted_consistent_and_resumable(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    js = [Job(f"m{i}", "fp32", "local", "onnxruntime", JobSettings(MeasureSettings(min_iters=10))) for i in range(3)]
    with harness.store.open(db) as st:
        run = st.create_run(suite="s", config={})
        ids = st.add_jobs(run, js)
        outcome = SweepOutcome(run, resume=resume_command(SweepOptions(suite_path="s.yaml"), st.path, run))
        ctx = _Context(st, ids, run, outcome, SweepProgress(total=3, quiet=True), {j.key: [] for j in js})
        with pytest.raises(Interrupted) as e, stopping_resumable(st, outcome):
            _finish(ctx, js[0], JobResult("ok", metrics={"p50_ms": 1.0}, samples_ns=np.ones(10, dtype=np.int64)))
            st.job_started(ids[js[1].key], "local")  # running on its board when the second Ctrl-C comes
            raise KeyboardInterrupt
        assert e.value.exit_code == 130 and "\n" not in str(e.value)
        assert str(e.value) == (f"stopped at once: run {run} keeps the 1 job(s) stored in this sweep (status "
                                f"'interrupted'); jobs that were running start again on resume: harness sweep s.yaml "
                                f"--store {db} --resume {run}")
    with harness.store.open(db) as st:
        assert st.run_info(run)["status"] == "interrupted"
        assert [s for _, _, s in st.jobs(run)] == ["ok", "pending", "pending"]
        assert st._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        st.reopen_run(run)
        assert st.run_info(run)["status"] == "running" and st.run_info(run)["finished"] is None


def test_the_gate_treats_an_interrupted_run_as_unfinished(tmp_path: Path) -> None:
    from harness.gate import run_gate
    from harness.gate.evaluate import baseline_runs

    rng = np.random.default_rng(5)
    with harness.store.open(tmp_path / "h.db") as st:
        base = add_run(st, rng)
        stopped = add_run(st, rng, finish=False)
        st.interrupt_run(stopped)
        cand = add_run(st, rng)
        assert baseline_runs(st, "nightly", cand) == [base]  # never a baseline either
        with pytest.raises(GateError, match=f"the candidate run {stopped} did not finish \\(status 'interrupted'\\)"):
            run_gate(st, stopped, base)
        assert harness.store.FINISHED == ("ok", "failed-jobs")


def test_the_resume_command_repeats_what_planned_the_run() -> None:
    opts = SweepOptions(suite_path="my suites/a.yaml", inventory_path="inv.yaml", device_names=("pi-1", "pi-2"),
                        device_tags=("lab",), cache_dir=Path("/c"))
    assert resume_command(opts, Path("results/harness.db"), "R1") == (
        "harness sweep 'my suites/a.yaml' --inventory inv.yaml --devices pi-1,pi-2 --tags lab --cache-dir /c "
        "--resume R1")
    assert resume_command(SweepOptions(suite_path="a.yaml"), Path("x.db"), "R2") == (
        "harness sweep a.yaml --store x.db --resume R2")
