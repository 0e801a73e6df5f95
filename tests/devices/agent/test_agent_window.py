"""The window on the board's clock: ``time.time()`` just outside the first and last timed
iteration, with and without a target, in the result event."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.cli import main
from devices.agent.loops import Deadline, target_loop, timed_loop
from devices.agent.runtimes import SleepRuntime
from devices.agent.spec import TargetSettings


def fn_at(latency_ms: float):  # noqa: ANN201
    rt = SleepRuntime({"latency_ms": latency_ms})
    rt.prepare(np.zeros((1, 3), np.float32))
    return rt.infer_fn()


def test_timed_loop_marks_bracket_the_window() -> None:
    marks: list[float] = []
    before = time.time()
    samples, window_ns = timed_loop(fn_at(2.0), 20, 0.1, None, Deadline(30), marks)
    after = time.time()
    assert len(marks) == 2 and before <= marks[0] <= marks[1] <= after
    span = marks[1] - marks[0]
    assert span >= window_ns / 1e9 - 0.002 and span <= window_ns / 1e9 + 0.005  # the same window, another clock
    assert span >= sum(samples) / 1e9 - 0.002


def test_timed_loop_without_marks_is_unchanged() -> None:
    samples, window_ns = timed_loop(fn_at(0.0), 5, 0.0, None, Deadline(30))
    assert len(samples) == 5 and window_ns > 0


def test_target_loop_marks_bracket_the_window_checks_included() -> None:
    marks: list[float] = []
    before = time.time()
    samples, window_ns, reason, _ = target_loop(fn_at(0.2), 400, 0.0, None, Deadline(30),
                                                TargetSettings(90.0, 5.0, 0.9), marks=marks)
    after = time.time()
    assert reason == "target" and before <= marks[0] < marks[1] <= after
    assert marks[1] - marks[0] >= window_ns / 1e9 - 0.002  # the checks' pauses are on the wall clock only


@pytest.mark.parametrize("target", [None, {"percentile": 90, "rel_error": 5.0, "confidence": 0.9}])
def test_result_event_window(tmp_path: Path, target: dict | None) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    spec = lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": 1.0},
                         measure={"min_s": 0.2, "min_iters": 20, "warmup_s": 0.05, "target": target})
    out = io.StringIO()
    before = time.time()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 0
    after = time.time()
    res = json.loads(out.getvalue().splitlines()[-1])
    w = res["window"]
    assert set(w) == {"start_unix", "end_unix"}
    assert before + 0.05 <= w["start_unix"] < w["end_unix"] <= after  # after the warm-up
    assert w["end_unix"] - w["start_unix"] == pytest.approx(res["latency"]["window_s"], abs=0.02)
