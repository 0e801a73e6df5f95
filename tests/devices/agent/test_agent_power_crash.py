"""Crash recovery of power modes with real agent processes: a job killed mid-window (SIGKILL,
no ``finally``) leaves its restore file; the next agent start (``serve`` or ``measure``) puts
the fake board back. And a leased job whose coordinator goes away is killed by the server,
which restores the board once the job's process is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import agent_testlib as lib
import power_testlib as fake

from devices.agent.power import RESTORE_FILE, SYSFS_ROOT_ENV

ECO = {"name": "eco", "cpufreq": {"governor": "powersave", "max_freq_khz": 1200000}, "nvpmodel": 2, "settle_s": 0}
ORIG = [("schedutil", fake.CPUINFO[0], fake.CPUINFO[1])] * 4
ECO_STATE = [("powersave", fake.CPUINFO[0], 1200000)] * 4


class Board:
    """A fake board (cpufreq tree, nvpmodel in MAXN) and the environment that points an agent at it."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.root = fake.cpufreq_tree(tmp_path / "root")
        self.bin, self.log = fake.fake_tools(tmp_path, self.root, mode=0)
        self.work = tmp_path / "work"
        (self.work / "jobs").mkdir(parents=True)
        self.env = dict(os.environ, PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                        **{SYSFS_ROOT_ENV: str(self.root), "EDGE_HARNESS_LEASE_DIR": str(tmp_path / "lease")})

    def spec(self, name: str, mode: dict | None, min_s: float = 120.0) -> Path:
        model = self.tmp / "model.bin"
        model.write_bytes(b"sleep")
        spec = lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": 5}, job_id=name,
                             measure={"min_s": min_s, "min_iters": 5, "warmup_s": 0.01, "warmup_iters": 1,
                                      "timeout_s": 300})
        if mode is not None:
            spec["power_mode"] = mode
        return lib.write_spec(self.work / "jobs", spec, f"{name}.json")

    def agent(self, *argv: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "devices.agent", *argv], cwd=lib.REPO, env=self.env, text=True,
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def in_eco(self) -> bool:
        return fake.state(self.root) == ECO_STATE and fake.nvpmodel_mode(self.tmp) == 2

    def restored(self) -> bool:
        return (fake.state(self.root) == ORIG and fake.nvpmodel_mode(self.tmp) == 0
                and not (self.work / RESTORE_FILE).exists())


def wait_phase(proc: subprocess.Popen, phase: str, timeout: float = 60) -> list[dict]:
    """The agent's events up to its progress event ``phase`` (the job is then in its window)."""
    events, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        assert line, "the agent ended before phase %s: %s" % (phase, proc.stderr.read())
        events.append(json.loads(line))
        if events[-1].get("event") == "progress" and events[-1].get("phase") == phase:
            return events
    raise AssertionError("no phase %s in %s" % (phase, events))


def killed_mid_window(board: Board) -> None:
    """A ``measure`` in power mode eco, SIGKILLed in its timed window: the board stays in eco."""
    proc = board.agent("measure", "--workdir", str(board.work), str(board.spec("doomed", ECO)))
    try:
        wait_phase(proc, "timed")
        assert board.in_eco() and (board.work / RESTORE_FILE).exists()
        proc.kill()  # SIGKILL: no finally, no watchdog
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc.stdout.close()
    proc.stderr.close()
    assert board.in_eco() and (board.work / RESTORE_FILE).exists()


def test_a_killed_job_is_undone_when_the_server_starts(tmp_path: Path) -> None:
    board = Board(tmp_path)
    killed_mid_window(board)
    server = board.agent("serve", "--workdir", str(board.work))  # stdin at its end: starts, tidies, exits
    out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert board.restored()
    assert "restored the board's state from before the power mode 'eco' of job doomed" in err
    assert fake.calls(board.log)[-2:] == ["nvpmodel -q", "nvpmodel -m 0"]


def test_a_killed_job_is_undone_when_the_next_measure_starts(tmp_path: Path) -> None:
    board = Board(tmp_path)
    killed_mid_window(board)
    proc = board.agent("measure", "--workdir", str(board.work), str(board.spec("next", None, min_s=0.05)))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert board.restored() and "restored the board's state" in err
    assert "power_mode" not in lib.by_event([json.loads(x) for x in out.splitlines()], "result")[0]


def test_a_leased_job_whose_coordinator_went_away_is_killed_and_undone(tmp_path: Path) -> None:
    board = Board(tmp_path)
    server = board.agent("serve", "--workdir", str(board.work), stdin=subprocess.PIPE)
    try:
        assert json.loads(server.stdout.readline())["event"] == "ready"
        request = {"cmd": "job", "spec": str(board.spec("leased", ECO)),
                   "lease": {"owner": "run-a", "host": "ci", "pid": os.getpid(), "ttl_s": 60, "wait_s": 0}}
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        wait_phase(server, "timed")
        assert board.in_eco()
        out, err = server.communicate(timeout=60)  # stdin ends with the session: the server kills the job
    finally:
        if server.poll() is None:
            server.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e.get("kind") == "LeaseLost" for e in events) and events[-1]["event"] == "exit"
    assert board.restored(), err
    assert "restored the board's state from before the power mode 'eco' of job leased" in err
