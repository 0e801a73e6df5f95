"""Who writes a run (schema v7): a resume refuses a run a live sweep is writing, on this host by
pid and process start time, elsewhere by heartbeat; a dead writer's run resumes."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import harness.store
from harness.errors import RunBusyError
from harness.records import Job
from harness.store.schema import MIGRATIONS, SCHEMA_VERSION
from harness.store.writer import STALE_AFTER_S, Writer, start_ticks

ROOT = Path(__file__).resolve().parents[3]


def spawn_writer(db: Path, config: str = "{}") -> tuple[subprocess.Popen, str]:
    """A real second process that creates a run in the store (as a sweep does) and stays alive;
    ``config``: a Python expression for the run's plan (``suite`` is bound to its argv[1], if any)."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        import harness.store
        from harness.config import load_inventory, load_suite
        from harness.coordinator.sweep import plan_config
        from harness.plan import make_plan, select_devices
        suite = load_suite(Path(sys.argv[1])) if len(sys.argv) > 1 else None
        st = harness.store.open({str(db)!r})
        run = st.create_run(suite="s", config={config})
        print(run, flush=True)
        time.sleep(120)
    """)
    return _start([sys.executable, "-c", script])


def _start(argv: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    run = proc.stdout.readline().strip()
    assert run, "the writer process did not start"
    return proc, run


def test_a_live_writer_on_this_host_is_refused_and_a_dead_ones_run_resumes(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    proc, run = spawn_writer(db)
    try:
        with harness.store.open(db) as st:
            w = st.writer(run)
            assert (w.host, w.pid) == (platform.node(), proc.pid) and w.token.endswith(f":{start_ticks(proc.pid)}")
            with pytest.raises(RunBusyError) as e:
                st.reopen_run(run)
            message = str(e.value)
            assert message.startswith(f"run {run} is being written by pid {proc.pid} on host {platform.node()} since ")
            assert "--force" in message and "\n" not in message and e.value.exit_code == 2
            assert st.run_info(run)["status"] == "running" and st.writer(run).pid == proc.pid  # nothing taken
    finally:
        proc.kill()
        proc.wait()
    with harness.store.open(db) as st:
        st.reopen_run(run)  # its writer is gone: resumable, and this process writes it now
        assert st.writer(run).pid == os.getpid() and st.run_info(run)["status"] == "running"


def test_a_reused_pid_is_not_the_writer(tmp_path: Path) -> None:
    """The recorded pid runs, but it started at another time: another process got the pid."""
    db = tmp_path / "h.db"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with harness.store.open(db) as st:
            run = st.create_run(suite="s", config={})
            mine = st.writer(run)
            ns, _, ticks = mine.token.rpartition(":")
            live = start_ticks(other.pid)
            assert live is not None
            # The writer as it would have been recorded: the pid now held by `other`, an earlier start.
            st._conn.execute("UPDATE runs SET writer_pid=?, writer_token=? WHERE id=?",
                             (other.pid, f"{ns}:{live - 1}", run))
            assert not st.writer(run).is_alive()
            st.reopen_run(run)
            assert st.writer(run).pid == os.getpid()
            # And the same pid with its real start time is alive: refused.
            st._conn.execute("UPDATE runs SET writer_pid=?, writer_token=? WHERE id=?", (other.pid, f"{ns}:{live}", run))
            with pytest.raises(RunBusyError, match=f"pid {other.pid}"):
                st.reopen_run(run)
            st.reopen_run(run, force=True)  # the documented override
            assert st.writer(run).pid == os.getpid()
    finally:
        other.kill()
        other.wait()


def test_another_hosts_writer_is_alive_until_its_heartbeat_is_stale(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        now = time.time()
        elsewhere = ("lab-coordinator", 4242, "0b5e1d-other-boot/pid:[4026531836]:1234")
        st._conn.execute("UPDATE runs SET writer_host=?, writer_pid=?, writer_token=?, writer_since=?, heartbeat=?"
                         " WHERE id=?", (*elsewhere, now - 3600, now - 20, run))
        with pytest.raises(RunBusyError, match="pid 4242 on host lab-coordinator since .* UTC \\(heartbeat 2\\d s ago\\)"):
            st.reopen_run(run)
        st._conn.execute("UPDATE runs SET heartbeat=? WHERE id=?", (now - STALE_AFTER_S - 1, run))
        st.reopen_run(run)
        assert st.writer(run).host == platform.node()


def test_a_finished_or_interrupted_run_resumes_whoever_wrote_it(tmp_path: Path) -> None:
    """Only a run still 'running' can have a live writer: a sweep that ended (or was stopped) left it."""
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        st._conn.execute("UPDATE runs SET writer_host='lab', writer_token=NULL, heartbeat=? WHERE id=?",
                         (time.time(), run))
        assert st.writer(run).is_alive()
        st.interrupt_run(run)
        st.reopen_run(run)
        assert st.run_info(run)["status"] == "running"


def test_the_heartbeat_is_refreshed_while_the_sweep_writes_and_stops_after(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        first = st.writer(run).heartbeat
        with st.keeping_alive(run, every_s=0.05):
            deadline = time.monotonic() + 10
            while st.writer(run).heartbeat == first and time.monotonic() < deadline:
                time.sleep(0.05)
            assert st.writer(run).heartbeat > first
        last = st.writer(run).heartbeat
        time.sleep(0.3)
        assert st.writer(run).heartbeat == last  # the thread ended with the block
        st._conn.execute("UPDATE runs SET writer_pid = writer_pid + 1 WHERE id=?", (run,))  # taken over
        assert not st.beat(run)


def test_a_v6_store_migrates_and_its_runs_resume(tmp_path: Path) -> None:
    """A run stored before v7 has no writer: it resumes as it always did."""
    path = tmp_path / "h.db"
    conn = sqlite3.connect(path)
    for version, step in enumerate(MIGRATIONS[:6], start=1):
        conn.executescript(f"BEGIN;\n{step}\nPRAGMA user_version = {version};\nCOMMIT;")
    conn.execute("INSERT INTO runs (id, suite, config_json, started) VALUES ('r6', 's', '{}', 0)")
    conn.execute("INSERT INTO jobs (run_id, key, model, variant, device, runtime, settings_json, status)"
                 " VALUES ('r6', 'k', 'm', 'fp32', 'local', 'onnxruntime', '{}', 'running')")
    conn.commit()
    conn.close()
    with harness.store.open(path) as st:
        assert st.writer("r6") is None
        st.reopen_run("r6")
        assert st.writer("r6").pid == os.getpid()
        assert st.jobs("r6")[0][2] == "pending"
        assert st.add_jobs("r6", [Job("m", "fp32", "local", "onnxruntime")])
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 7


def test_writer_identity_of_this_process() -> None:
    me = Writer.this_process()
    assert me.pid == os.getpid() and me.host == platform.node() and me.is_alive() and me.is_this_process()
    if sys.platform.startswith("linux"):
        assert me.token is not None and int(me.token.rsplit(":", 1)[1]) == start_ticks(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert start_ticks(child.pid) is None  # gone


def test_a_killed_writer_not_yet_reaped_is_dead(tmp_path: Path) -> None:
    """A zombie keeps its pid and its start time in /proc until its parent reaps it: it writes nothing."""
    db = tmp_path / "h.db"
    proc, run = spawn_writer(db)
    try:
        proc.kill()
        deadline = time.monotonic() + 10
        while start_ticks(proc.pid) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert Path(f"/proc/{proc.pid}").exists()  # still there, as a zombie (not waited for yet)
        with harness.store.open(db) as st:
            st.reopen_run(run)
            assert st.writer(run).pid == os.getpid()
    finally:
        proc.wait()


def test_without_proc_a_writer_on_this_host_is_dead_once_its_pid_is_gone() -> None:
    """A run recorded where /proc was missing (no token): its pid gone from this host is enough."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    now = time.time()
    recorded = Writer(platform.node(), child.pid, None, now - 60, now - 1)
    try:
        assert recorded.is_alive()  # its pid runs, its heartbeat is fresh
    finally:
        child.kill()
        child.wait()
    assert not recorded.is_alive()
    assert Writer("lab-elsewhere", child.pid, None, now - 60, now - 1).is_alive()  # elsewhere: the heartbeat rules
