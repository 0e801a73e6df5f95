"""``agent serve`` under the board's lease: a job waits for a board someone else holds, gives
up after wait_s (BoardBusy), takes over an expired lease; a leased job dies when the
coordinator's heartbeats stop, when its session ends, and when the server itself is killed."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from agent_testlib import REPO, make_spec, write_classifier, write_spec

from devices.agent import lease
from devices.agent.serve import STDERR_END
from tests.sshlab import wait_gone

OTHER = {"owner": "run-b", "host": "nightly", "pid": 202, "job_id": "run-b-7"}
RENEW = '{"cmd":"renew"}'


class Agent:
    """``agent serve`` as a live process: requests written one at a time, events read as they come."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "devices.agent", "serve"], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events: queue.Queue[dict] = queue.Queue()
        self.stderr = ""
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        assert self.next()["event"] == "ready"

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def _pump_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr += line

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next(self, timeout: float = 30) -> dict:
        return self.events.get(timeout=timeout)

    def until(self, name: str, timeout: float = 30) -> list[dict]:
        """Events up to and including the first named ``name``."""
        seen, end = [], time.monotonic() + timeout
        while not seen or seen[-1]["event"] != name:
            seen.append(self.next(max(0.01, end - time.monotonic())))
        return seen

    def close(self) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def agent():  # noqa: ANN201
    a = Agent()
    yield a
    a.close()


def job_line(tmp_path: Path, *, ttl_s: float = 60, wait_s: float = 30, min_s: float = 0.3, name: str = "a") -> str:
    model = write_classifier(tmp_path / "m.onnx")
    spec = make_spec(model, "sleep", job_id=name, runtime_options={"latency_ms": 1},
                     measure={"min_s": min_s, "timeout_s": 120})
    path = write_spec(tmp_path, spec, f"{name}.json")
    terms = {"dir": str(tmp_path / "board"), "owner": "run-a", "host": "ci-1", "pid": 101, "ttl_s": ttl_s,
             "wait_s": wait_s, "job_id": name}
    return json.dumps({"cmd": "job", "spec": str(path), "lease": terms})


def test_a_job_waits_for_a_held_board_and_runs_once_it_is_released(agent: Agent, tmp_path: Path) -> None:
    board = str(tmp_path / "board")
    theirs = lease.try_acquire(board, OTHER, ttl_s=60)
    agent.send(job_line(tmp_path))
    waiting = agent.next()
    assert waiting["event"] == "lease" and waiting["state"] == "waiting"
    assert waiting["holder"]["owner"] == "run-b" and "token" not in waiting["holder"]
    time.sleep(1.0)
    assert agent.events.empty()  # still waiting: nothing forked
    assert lease.release(board, theirs.lease["token"])
    events = agent.until("exit")
    assert [e["event"] for e in events][:2] == ["lease", "facts"] and events[0]["state"] == "granted"
    assert events[-2]["event"] == "result" and events[-1]["code"] == 0
    assert lease.show(board) is None  # released before the exit event


def test_board_busy_after_wait_s_without_running_the_job(agent: Agent, tmp_path: Path) -> None:
    lease.try_acquire(str(tmp_path / "board"), OTHER, ttl_s=60)
    start = time.monotonic()
    agent.send(job_line(tmp_path, wait_s=1.0))
    events = agent.until("exit")
    assert 1.0 <= time.monotonic() - start < 5
    assert [e["event"] for e in events] == ["lease", "error", "exit"]  # waiting, busy, exit: no facts, no fork
    busy = events[1]
    assert busy["kind"] == "BoardBusy"
    assert busy["message"].startswith("board busy: held by run-b@nightly pid 202 since ")
    assert busy["message"].endswith("(waited 1 s)")
    assert events[2]["code"] == 1 and "pid" not in events[2]
    assert agent.close() == 0 and agent.stderr.count(STDERR_END) == 1


def test_an_expired_lease_is_taken_over_and_its_holder_named(agent: Agent, tmp_path: Path) -> None:
    lease.try_acquire(str(tmp_path / "board"), OTHER, ttl_s=0.05)
    time.sleep(0.1)
    agent.send(job_line(tmp_path))
    events = agent.until("exit")
    assert events[0]["event"] == "lease" and events[0]["state"] == "taken_over"
    assert events[0]["previous"]["owner"] == "run-b" and events[0]["reason"].startswith("expired at ")
    assert events[-1]["code"] == 0
    agent.close()
    assert f"lease of {tmp_path / 'board'} taken over from run-b@nightly pid 202 (expired at " in agent.stderr


def test_a_job_whose_heartbeats_stop_is_killed_and_its_lease_freed(agent: Agent, tmp_path: Path) -> None:
    agent.send(job_line(tmp_path, ttl_s=1.0, min_s=60))
    assert agent.next()["state"] == "granted"
    pid = agent.next()["pid"]  # the job's facts
    for _ in range(10):  # 2.5 s of heartbeats: more than the ttl, the job lives on
        agent.send(RENEW)
        time.sleep(0.25)
        assert lease.show(str(tmp_path / "board"))["expires"] > time.time()
    stopped = time.monotonic()
    events = agent.until("exit", timeout=10)
    assert time.monotonic() - stopped < 2.0  # killed at 0.75 ttl, before the lease expires
    assert events[-2]["kind"] == "LeaseLost" and "no heartbeat" in events[-2]["message"]
    assert events[-1]["code"] == -signal.SIGKILL and events[-1]["pid"] == pid
    assert wait_gone(pid, 10) and lease.show(str(tmp_path / "board")) is None


def test_end_of_input_kills_a_running_job_and_releases_its_lease(agent: Agent, tmp_path: Path) -> None:
    agent.send(job_line(tmp_path, min_s=60))
    assert agent.next()["state"] == "granted"
    pid = agent.next()["pid"]
    assert lease.show(str(tmp_path / "board"))["owner"] == "run-a"
    assert agent.close() == 0  # the server quits at once, not after the 60 s job
    assert wait_gone(pid, 10) and lease.show(str(tmp_path / "board")) is None
    assert "the coordinator's session ended" in agent.stderr


def test_a_killed_server_takes_its_running_job_with_it(agent: Agent, tmp_path: Path) -> None:
    agent.send(job_line(tmp_path, min_s=60))
    assert agent.next()["state"] == "granted"
    pid = agent.next()["pid"]
    agent.proc.kill()
    assert wait_gone(pid, 10)  # no orphan measuring on
    left = lease.show(str(tmp_path / "board"))
    assert left["owner"] == "run-a" and left["agent"]["pid"] == agent.proc.pid
    agent.proc.wait(10)
    # Its server gone, nobody measures: the next job need not wait out the ttl.
    assert lease.vacancy(left, time.time()) == f"its agent (pid {agent.proc.pid}) is gone"


def test_malformed_requests_are_answered_and_bare_paths_still_run(agent: Agent, tmp_path: Path) -> None:
    model = write_classifier(tmp_path / "m.onnx")
    bare = write_spec(tmp_path, make_spec(model, "sleep", job_id="bare", runtime_options={"latency_ms": 1}))
    agent.send('{"cmd": "dance"}')
    agent.send(json.dumps({"cmd": "job", "spec": str(bare), "lease": {"dir": "/x"}}))
    agent.send(RENEW)  # a heartbeat with nothing running: ignored, unanswered
    agent.send(str(bare))
    first, second, third = agent.until("exit"), agent.until("exit"), agent.until("exit")
    assert first[0]["kind"] == "ProtocolError" and "dance" in first[0]["message"] and first[-1]["code"] == 2
    assert second[0]["kind"] == "ProtocolError" and "owner" in second[0]["message"]
    assert third[-2]["event"] == "result" and third[-2]["job_id"] == "bare" and third[-1]["code"] == 0
    assert agent.close() == 0 and agent.stderr.count(STDERR_END) == 3
