"""Leases that hold across coordinators, over the real SSH lab: two sweeps started at once on
the same boards never measure one board at the same time; a SIGKILLed coordinator's board is
freed for the next sweep; a cut link stops the job on the board before its lease expires; a
lease its holder left behind is waited out and taken over, and a board held too long fails
the job as busy.

The second coordinator is a process of its own (``python -m harness.cli sweep``) joining
the session's Ray, as a CI job would join a lab's cluster; the lab's boards share this
machine's filesystem and processes, so the tests read the leases (in each board's lease
directory, not its work directory) and look for the board's job processes directly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devices.agent import lease
from harness.cli import main
from tests.sshlab import LabHost

pytestmark = pytest.mark.usefixtures("ray_local")

ROOT = Path(__file__).resolve().parents[2]
GHOST = {"owner": "ghost-run", "host": "elsewhere", "pid": 1, "job_id": "ghost-run-1"}


def write_sweep(tmp: Path, hosts: list[LabHost | None], name: str, *, min_s: float, ttl_s: float = 10,
                wait_s: float = 60, variants: tuple[str, ...] = ("fp32",), timeout_s: float = 60) -> tuple[Path, Path]:
    """One device per lab host, or of kind local for None (workdir ``tmp/board-i``: every sweep
    of a test shares the boards)."""
    devices = [
        {"name": f"board-{i}", "kind": "local", "workdir": str(tmp / f"board-{i}"), "runtimes": ["sleep"]}
        if h is None else
        h.inventory_entry(f"board-{i}", tmp / f"board-{i}", runtimes=["sleep"])
        for i, h in enumerate(hosts)
    ]  # fmt: skip
    inventory = tmp / "inventory.yaml"
    inventory.write_text(json.dumps({"devices": devices}))
    suite = tmp / f"{name}.yaml"
    suite.write_text(
        f"name: {name}\nmodels: [{{builtin: digits-cnn}}]\nvariants: {json.dumps(list(variants))}\n"
        "runtimes: [sleep]\nruntime_options: {sleep: {latency_ms: 2}}\nretries: 0\n"
        f"faults: {{grace_s: 5}}\nlease: {{ttl_s: {ttl_s}, wait_s: {wait_s}}}\n"
        f"measure: {{warmup_iters: 2, warmup_s: 0.0, min_iters: 10, min_s: {min_s}, timeout_s: {timeout_s}, "
        "quiet: null}\n"
    )
    return suite, inventory


def argv(tmp: Path, suite: Path, inventory: Path, cache: Path, db: str, *, quiet: bool = True) -> list[str]:
    return ["sweep", str(suite), "--inventory", str(inventory), "--store", str(tmp / db), "--cache-dir", str(cache),
            "--no-report", *(["-q"] if quiet else [])]


def other_coordinator(tmp: Path, args: list[str]) -> subprocess.Popen[bytes]:
    """A coordinator of its own (own process group, so a test can SIGKILL all of it), on this session's Ray."""
    import ray

    address = ray.get_runtime_context().gcs_address
    log = open(tmp / "other.log", "wb")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args, "--ray-address", address], cwd=tmp,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)


def lease_dir(host: LabHost | None) -> str:
    """Where a board keeps its lease: a lab host's own, or this machine's (kind local, tests/conftest.py)."""
    return str(host.lease_dir) if host is not None else os.environ[lease.LEASE_DIR_ENV]


def held_by_other(board: str, proc: subprocess.Popen[bytes], tmp: Path, within_s: float = 120) -> dict:
    """The other coordinator's lease on the board whose lease directory is ``board``, once its job there runs."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        held = lease.show(str(board))
        if held is not None and held["pid"] == proc.pid:
            return held
        assert proc.poll() is None, (tmp / "other.log").read_text()[-3000:]  # it ended before measuring
        time.sleep(0.05)
    raise AssertionError(f"no lease of the other coordinator on {board}: {(tmp / 'other.log').read_text()[-3000:]}")


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the coordinator's whole process group (a no-op once it is gone)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def agent_processes(board: Path) -> list[int]:
    """The board's agent server and its job child (a fork: same command line) for this work directory."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if any(arg.startswith(f"{board}/cache/".encode()) for arg in cmd) and b"serve" in cmd:
            pids.append(int(entry))
    return pids


def stored(db: Path) -> list[tuple[str, str, dict]]:
    """(status, error, details) of every stored result."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT j.status, j.error, r.details_json FROM jobs j JOIN results r ON r.job_id = j.id")
        return [(status, error, json.loads(details or "{}")) for status, error, details in rows]


@pytest.fixture
def cache(artifact_cache) -> Path:  # noqa: ANN001
    root = artifact_cache.root.parent  # the session's trained digits CNN and its variants
    (root / "artifacts").mkdir(exist_ok=True)
    return root


def test_two_sweeps_at_once_never_measure_one_board_together(ssh_lab, tmp_path: Path, cache: Path,  # noqa: ANN001
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    hosts = ssh_lab(2)
    for h in hosts:
        h.start()
    # Each coordinator keeps a board ~9 s: more than the two start-ups can differ by.
    suite, inventory = write_sweep(tmp_path, hosts, "both", min_s=4, variants=("fp32", "int8-dynamic"))
    other = other_coordinator(tmp_path, argv(tmp_path, suite, inventory, cache, "other.db", quiet=False))
    try:
        code = main(argv(tmp_path, suite, inventory, cache, "mine.db", quiet=False))
        assert other.wait(120) == 0, (tmp_path / "other.log").read_text()[-3000:]
    finally:
        kill(other)
    assert code == 0
    results = {run: stored(tmp_path / f"{run}.db") for run in ("other", "mine")}
    assert all(len(rows) == 4 and {s for s, _, _ in rows} == {"ok"} for rows in results.values()), results
    for board in ("board-0", "board-1"):
        windows = sorted((d["window"]["start_unix"], d["window"]["end_unix"], run)
                         for run, rows in results.items() for _, _, d in rows if d["board"] == board)
        assert {run for *_, run in windows} == {"other", "mine"}  # both measured the board...
        for (_, end, a), (start, _, b) in zip(windows, windows[1:]):
            assert start >= end, f"{board}: a window of {b} began {end - start:.3f} s before one of {a} ended"
    # ...and one of them had to wait for the other, and said so on its progress output.
    waited = [run for run, rows in results.items() if any("lease_wait_s" in d for _, _, d in rows)]
    assert waited, "the two sweeps never met on a board"
    said = {"mine": capsys.readouterr().err, "other": (tmp_path / "other.log").read_text()}
    for run in waited:
        assert re.search(r"board board-\d: waiting, held by \S+@\S+ since ", said[run]), said[run][-2000:]


@pytest.mark.parametrize("kind", ["ssh", "local"])
def test_a_sigkilled_coordinators_board_is_freed_for_the_next_sweep(kind: str, tmp_path: Path, cache: Path,
                                                                    request: pytest.FixtureRequest) -> None:
    host = request.getfixturevalue("ssh_lab")(1)[0] if kind == "ssh" else None
    if host is not None:
        host.start()
    long, inventory = write_sweep(tmp_path, [host], "long", min_s=60, ttl_s=60)
    other = other_coordinator(tmp_path, argv(tmp_path, long, inventory, cache, "other.db"))
    board = tmp_path / "board-0"
    try:
        held_by_other(lease_dir(host), other, tmp_path)
        end = time.monotonic() + 30  # the server takes the lease before it forks the job: a loaded machine lags
        while len(agent_processes(board)) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert len(agent_processes(board)) == 2  # the server and its measuring job
    finally:
        kill(other)
    killed = time.monotonic()
    while agent_processes(board) and time.monotonic() - killed < 30:
        time.sleep(0.1)
    assert agent_processes(board) == []  # nobody measures on: the job died with its coordinator
    left = lease.show(lease_dir(host))
    if kind == "ssh":  # its connection closed, the board's server ended the job and freed the board
        assert left is None
    else:  # Ray SIGKILLs a dead actor's children, the server among them: it may not have released
        assert left is None or "is gone" in lease.vacancy(left, time.time())
    short, _ = write_sweep(tmp_path, [host], "short", min_s=0.5, ttl_s=60)
    assert main(argv(tmp_path, short, inventory, cache, "next.db")) == 0
    [(status, _, details)] = stored(tmp_path / "next.db")
    assert status == "ok" and "lease_wait_s" not in details  # free at once, not after the 60 s ttl
    assert ("lease_taken_over" in details) == (left is not None)
    assert time.monotonic() - killed < 60


def test_a_cut_link_stops_the_job_on_the_board_before_its_lease_expires(ssh_lab, tmp_path: Path,  # noqa: ANN001
                                                                        cache: Path) -> None:
    host = ssh_lab(1)[0]
    host.start()
    host.link_up()  # skips, saying why, on a loopback lab
    long, inventory = write_sweep(tmp_path, [host], "long", min_s=60, ttl_s=5)
    other = other_coordinator(tmp_path, argv(tmp_path, long, inventory, cache, "other.db"))
    board, held = tmp_path / "board-0", lease_dir(host)
    try:
        held_by_other(held, other, tmp_path)
        time.sleep(1.0)  # a renewal or two
        last = lease.show(held)
        assert last is not None and len(agent_processes(board)) == 2
        host.link_down()
        while lease.show(held) is not None and time.time() < last["expires"] + 5:
            last = lease.show(held) or last  # the board's clock is this machine's
            time.sleep(0.05)
        freed = time.time()
        # No heartbeat got through: the board killed the job at 0.75 ttl and freed the board,
        # before the lease's last expiry: by then nobody measures.
        assert lease.show(held) is None and freed < last["expires"]
        assert len(agent_processes(board)) == 1  # the server (its session hangs on the cut link), no job
    finally:
        kill(other)
        host.link_up()
    short, _ = write_sweep(tmp_path, [host], "short", min_s=0.5, ttl_s=5)
    assert main(argv(tmp_path, short, inventory, cache, "next.db")) == 0
    [(status, _, details)] = stored(tmp_path / "next.db")
    assert status == "ok" and "lease_wait_s" not in details


def test_a_left_lease_fails_a_job_as_busy_then_is_broken_or_waited_out(ssh_lab, tmp_path: Path,  # noqa: ANN001
                                                                       cache: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    host = ssh_lab(1)[0]
    host.start()
    board = lease_dir(host)  # the board's, whatever work directory the inventory gives it
    lease.try_acquire(board, GHOST, ttl_s=600)
    impatient, inventory = write_sweep(tmp_path, [host], "impatient", min_s=0.3, wait_s=1)
    assert main(argv(tmp_path, impatient, inventory, cache, "busy.db")) == 3
    [(status, error, _)] = stored(tmp_path / "busy.db")
    assert status == "failed" and error.startswith("board busy: held by ghost-run@elsewhere pid 1 since ")
    capsys.readouterr()

    assert main(["lease", "break", "board-0", "--inventory", str(inventory), "--cache-dir", str(cache)]) == 0
    assert "board-0: freed the lease held by ghost-run@elsewhere pid 1" in capsys.readouterr().out

    # Left again, by a holder that will not renew it; long enough to outlast the sweep's start on a loaded machine.
    lease.try_acquire(board, GHOST, ttl_s=15)
    patient, _ = write_sweep(tmp_path, [host], "patient", min_s=0.3, wait_s=60)
    assert main(argv(tmp_path, patient, inventory, cache, "late.db", quiet=False)) == 0
    [(status, _, details)] = stored(tmp_path / "late.db")
    assert status == "ok" and details["lease_taken_over"].startswith("ghost-run@elsewhere pid 1 (expired at ")
    assert 0 < details["lease_wait_s"] < 16
    assert "board board-0: waiting, held by ghost-run@elsewhere since " in capsys.readouterr().err
