"""Board state before the window (``measure.quiet``): fake /proc trees for the arithmetic
and the wait, this Linux machine's /proc for real, a job end to end, the spec key."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import agent_testlib as lib
import pytest

from devices.agent.boardstate import BoardState, read_cpu_jiffies, read_own_jiffies
from devices.agent.cli import main
from devices.agent.errors import ProtocolError
from devices.agent.loops import Deadline
from devices.agent.measure import run_job
from devices.agent.runtimes import SleepRuntime
from devices.agent.spec import QuietSettings, parse_spec

QUIET = QuietSettings(max_other_cpu_pct=25.0, max_load_per_cpu=1.0, min_free_mb=100.0, wait_s=30.0)


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def proc(root: Path, busy: int, idle: int, own: int, load: float = 0.5, avail_kb: int = 4_000_000,
         cpus: int = 4) -> None:
    """A fake /proc: ``busy`` jiffies split over user/system/irq/softirq/steal, ``idle``
    over idle/iowait, guest time inside user (not counted twice), ``own`` jiffies of ours."""
    user, system, irq, softirq, steal = busy - 40, 20, 5, 10, 5
    line = "cpu  %d 0 %d %d %d %d %d %d 7 0" % (user, system, idle - 3, 3, irq, softirq, steal)
    per_cpu = "".join("cpu%d 1 0 1 1 0 0 0 0 0 0\n" % i for i in range(cpus))
    write(root, "proc/stat", line + "\n" + per_cpu + "intr 12345\nctxt 999\n")
    # comm with spaces and a ')' must not shift the fields
    utime, stime, cutime, cstime = own - 6, 3, 2, 1
    write(root, "proc/self/stat", "4242 (python (3) x) S 1 2 3 0 -1 0 10 0 0 0 %d %d %d %d 20 0 1 0\n"
          % (utime, stime, cutime, cstime))
    write(root, "proc/loadavg", "%.2f 0.40 0.30 2/345 4242\n" % load)
    write(root, "proc/meminfo", "MemTotal: 8000000 kB\nMemFree: 1000 kB\nMemAvailable: %d kB\n" % avail_kb)


class FakeBoard:
    """Each ``sleep`` advances a fake clock and the fake /proc by one reading: ``steps`` is
    a list of (busy, idle, own, load, avail_kb) deltas/values per sample."""

    def __init__(self, root: Path, steps: list[tuple[int, int, int, float, int]]):
        self.root, self.steps, self.now = root, list(steps), 0.0
        self.busy, self.idle, self.own = 100_000, 900_000, 5_000
        self.load, self.avail = steps[0][3], steps[0][4]
        self.write()

    def write(self) -> None:
        proc(self.root, self.busy, self.idle, self.own, self.load, self.avail)

    def sleep(self, s: float) -> None:
        self.now += s
        busy, idle, own, self.load, self.avail = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        self.busy, self.idle, self.own = self.busy + busy, self.idle + idle, self.own + own
        self.write()

    def clock(self) -> float:
        return self.now

    def probe(self) -> BoardState:
        return BoardState(str(self.root), sleep=self.sleep, clock=self.clock)


def test_proc_parsing(tmp_path: Path) -> None:
    proc(tmp_path, busy=1000, idle=3000, own=50, cpus=3)
    assert read_cpu_jiffies(str(tmp_path)) == (1000, 4000, 3)
    assert read_own_jiffies(str(tmp_path)) == 50


def test_other_cpu_excludes_our_own_and_reads_load_and_memory(tmp_path: Path) -> None:
    # 400 jiffies in 1 s on 4 CPUs: 120 busy, of which 40 ours -> others 80/400 = 20%
    board = FakeBoard(tmp_path, [(120, 280, 40, 1.2, 2_048_000)])
    state = board.probe().sample()
    assert state["other_cpu_pct"] == 20.0 and state["cpu_busy_pct"] == 30.0
    assert state["cpus"] == 4 and state["load_1m"] == 1.2 and state["load_per_cpu"] == 0.3
    assert (state["load_5m"], state["load_15m"]) == (0.4, 0.3)
    assert state["mem_available_mb"] == 2000.0 and state["errors"] == []


def test_a_quiet_board_is_read_once_and_not_marked(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path, [(40, 360, 20, 0.5, 4_000_000)])
    state, noisy = board.probe().settle(QUIET, 30.0)
    assert noisy is None and state["checks"] == 1 and state["waited_s"] == 0.0 and board.now == 1.0
    assert state["other_cpu_pct"] == 5.0 and state["reason"] is None and state["sample_s"] == 1.0
    assert "governors" in state and "nvpmodel" in state and "clocks_locked" in state  # none on a fake root
    json.dumps(state, allow_nan=False)


def test_a_busy_board_is_waited_for_then_measured_anyway_and_marked(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path, [(300, 100, 0, 3.0, 4_000_000)])  # others use 75%, load 0.75/CPU
    state, noisy = board.probe().settle(QUIET, 5.0)
    assert state["checks"] == 6 and state["waited_s"] == 5.0 and board.now == 6.0  # 1 s re-checks for 5 s
    assert noisy == ("other processes used 75.0% of the CPUs (max_other_cpu_pct 25); "
                     "measured anyway after waiting 5 s (wait limit 5 s)")
    assert state["other_cpu_pct"] == 75.0


def test_a_board_that_quiets_down_is_not_marked(tmp_path: Path) -> None:
    steps = [(300, 100, 0, 6.0, 50_000), (300, 100, 0, 6.0, 50_000), (20, 380, 0, 0.4, 4_000_000)]
    board = FakeBoard(tmp_path, steps)
    probe = board.probe()
    first = probe.sample()
    assert BoardState.breaches(first, QUIET) == [
        "other processes used 75.0% of the CPUs (max_other_cpu_pct 25)",
        "load average 1.50 per CPU (max_load_per_cpu 1)",
        "available memory 49 MB (min_free_mb 100)",
    ]
    board.steps = steps[1:]
    state, noisy = probe.settle(QUIET, 30.0)
    assert noisy is None and state["checks"] == 2 and state["waited_s"] == 1.0
    assert state["other_cpu_pct"] == 5.0 and state["mem_available_mb"] == pytest.approx(3906.2)


def test_each_threshold_alone(tmp_path: Path) -> None:
    for step, needle in [((0, 400, 0, 4.4, 4_000_000), "load average 1.10 per CPU"),
                         ((0, 400, 0, 0.1, 90 * 1024), "available memory 90 MB")]:
        state, noisy = FakeBoard(tmp_path, [step]).probe().settle(QUIET, 0.0)
        assert noisy.startswith(needle) and state["checks"] == 1 and "wait limit 0 s" in noisy


def test_a_missing_proc_is_a_reason_never_an_error(tmp_path: Path) -> None:
    state, noisy = BoardState(str(tmp_path / "nothing"), sleep=lambda s: None).settle(QUIET, 30.0)
    assert noisy is None and state["checks"] == 1
    assert state["reason"].startswith("board state unreadable: /proc/stat: FileNotFoundError")
    assert "/proc/loadavg" in state["reason"] and "/proc/meminfo" in state["reason"]
    assert state["other_cpu_pct"] is None and state["load_1m"] is None and state["mem_available_mb"] is None
    json.dumps(state, allow_nan=False)


def test_garbage_proc_files_are_reasons(tmp_path: Path) -> None:
    write(tmp_path, "proc/stat", "nonsense\n")
    write(tmp_path, "proc/self/stat", "1 (x) S\n")
    write(tmp_path, "proc/loadavg", "\n")
    write(tmp_path, "proc/meminfo", "MemTotal: 1 kB\n")
    state, noisy = BoardState(str(tmp_path), sleep=lambda s: None).settle(QUIET, 30.0)
    assert noisy is None and "no 'cpu' line" in state["reason"] and "MemAvailable" in state["reason"]


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc")
def test_for_real_a_busy_process_shows_and_our_own_spinning_does_not() -> None:
    ncpu = os.cpu_count() or 1
    one_cpu = 100.0 / ncpu
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        state = BoardState(sample_s=1.0).sample()
    finally:
        spinner.kill()
        spinner.wait()
    assert state["errors"] == [] and state["cpus"] == ncpu
    assert state["other_cpu_pct"] >= 0.6 * one_cpu, state  # the busy loop is someone else
    assert state["load_1m"] is not None and state["mem_available_mb"] > 0
    assert BoardState.breaches(state, QuietSettings(0.3 * one_cpu, 100.0, 0.0, 0.0))

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin)
    t.start()
    try:
        state = BoardState(sample_s=1.0).sample()
    finally:
        stop.set()
        t.join()
    # our own thread is busy (in cpu_busy_pct) but not counted as someone else's
    assert state["cpu_busy_pct"] - state["other_cpu_pct"] >= 0.4 * one_cpu, state


def sleep_spec(tmp_path: Path, **measure: object) -> dict:
    model = tmp_path / "model.bin"
    model.write_bytes(b"not a real model")
    m = dict({"min_s": 0.05, "min_iters": 20, "warmup_s": 0.02}, **measure)
    return lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": 0.5}, measure=m)


def test_run_job_reads_the_board_across_warmup_waits_rewarms_and_marks_noisy(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "root", [(300, 100, 0, 3.0, 4_000_000)])
    spec = parse_spec(sleep_spec(tmp_path, quiet={"wait_s": 2}))
    phases: list = []
    res = run_job(spec, SleepRuntime({"latency_ms": 0.5}), {}, phases.append, Deadline(60), None, None,
                  board.probe())
    # the first reading spans the warm-up; the board stayed busy, so it waited and warmed up again
    assert phases[:5] == ["load", "warmup", "board_state", "warmup", "timed"]
    assert res["noisy"].startswith("other processes used 75.0% of the CPUs")
    bs = res["board_state"]
    assert bs["waited_s"] == 2.0 and bs["checks"] == 3 and bs["other_cpu_pct"] == 75.0
    json.dumps(res, allow_nan=False)


def test_the_wait_is_bounded_by_the_jobs_time_left(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "root", [(300, 100, 0, 3.0, 4_000_000)])
    spec = parse_spec(sleep_spec(tmp_path, quiet={"wait_s": 1000}))
    res = run_job(spec, SleepRuntime({"latency_ms": 0.5}), {}, lambda p: None, Deadline(20), None, None,
                  board.probe())
    assert "wait limit 5 s" in res["noisy"] and res["board_state"]["waited_s"] <= 5.0  # a quarter of ~20 s


def test_quiet_null_reads_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, sleep_spec(tmp_path)))], out=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    res = events[-1]
    assert rc == 0 and res["board_state"] is None and res["noisy"] is None
    assert "board_state" not in [e.get("phase") for e in events]


def test_end_to_end_on_this_machine(tmp_path: Path) -> None:
    """The real /proc through the CLI; thresholds no board can fail, so no wait."""
    quiet = {"max_other_cpu_pct": 100, "max_load_per_cpu": 1e6, "min_free_mb": 0, "wait_s": 0}
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, sleep_spec(tmp_path, quiet=quiet)))], out=out)
    res = json.loads(out.getvalue().splitlines()[-1])
    assert rc == 0 and res["noisy"] is None and res["board_state"]["waited_s"] == 0.0
    if os.path.exists("/proc/stat"):
        assert res["board_state"]["reason"] is None and res["board_state"]["other_cpu_pct"] is not None


def test_spec_quiet_defaults() -> None:
    assert parse_spec(sleep_spec(Path("/tmp"), quiet={})).measure.quiet == QUIET
    assert parse_spec(sleep_spec(Path("/tmp"), quiet=None)).measure.quiet is None
    got = parse_spec(sleep_spec(Path("/tmp"), quiet={"wait_s": 0, "min_free_mb": 512})).measure.quiet
    assert got == QuietSettings(25.0, 1.0, 512.0, 0.0)
    bare = sleep_spec(Path("/tmp"))
    del bare["measure"]["quiet"]
    assert parse_spec(bare).measure.quiet == QUIET  # absent: the wire's default, on (as in a suite)


@pytest.mark.parametrize(("quiet", "needle"), [
    ({"wait_s": -1}, "measure.quiet.wait_s must be >= 0"),
    ({"max_other_cpu_pct": "25"}, "measure.quiet.max_other_cpu_pct must be int/float"),
    ({"min_free_mb": None}, "measure.quiet.min_free_mb must be int/float"),
    ({"max_load": 1}, "unknown spec key measure.quiet.max_load"),
    (True, "measure.quiet must be an object or null"),
])  # fmt: skip
def test_spec_quiet_errors_name_the_key(tmp_path: Path, quiet: object, needle: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_spec(sleep_spec(tmp_path, quiet=quiet))
    assert needle in str(e.value)


def test_a_quiet_board_costs_no_extra_time_and_no_second_warmup(tmp_path: Path) -> None:
    board = FakeBoard(tmp_path / "root", [(0, 100, 0, 0.1, 4_000_000)])
    spec = parse_spec(sleep_spec(tmp_path, quiet={"wait_s": 2}))
    phases: list = []
    res = run_job(spec, SleepRuntime({"latency_ms": 0.5}), {}, phases.append, Deadline(60), None, None,
                  board.probe())
    assert phases[:4] == ["load", "warmup", "board_state", "timed"]
    assert res["noisy"] is None and res["board_state"]["checks"] == 1 and res["board_state"]["waited_s"] == 0.0
