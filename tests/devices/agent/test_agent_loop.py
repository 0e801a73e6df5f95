"""Stop rules of warm-up and the timed window, timeouts, and the in-process CLI, all on
the library-free SleepRuntime."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.cli import main
from devices.agent.errors import MeasurementError
from devices.agent.measure import Deadline, make_input, timed_loop, warmup_loop
from devices.agent.runtimes import RUNTIMES, SleepRuntime


def sleep_fn(latency_ms: float):
    rt = SleepRuntime({"latency_ms": latency_ms})
    rt.prepare(np.zeros((1, 3), np.float32))
    return rt.infer_fn()


def test_loop_needs_min_iters_even_when_min_s_is_met() -> None:
    samples, window_ns = timed_loop(sleep_fn(5.0), min_iters=6, min_s=0.001, max_iters=None, deadline=Deadline(30))
    assert len(samples) == 6
    assert all(s >= 5_000_000 for s in samples)
    assert window_ns >= sum(samples)


def test_loop_needs_min_s_even_when_min_iters_is_met() -> None:
    samples, window_ns = timed_loop(sleep_fn(0.2), min_iters=3, min_s=0.25, max_iters=None, deadline=Deadline(30))
    assert window_ns >= 250_000_000
    assert len(samples) > 3


def test_loop_stops_at_max_iters() -> None:
    samples, _ = timed_loop(sleep_fn(0.0), min_iters=1000, min_s=10.0, max_iters=7, deadline=Deadline(30))
    assert len(samples) == 7


def test_loop_times_out() -> None:
    t0 = time.perf_counter()
    with pytest.raises(MeasurementError, match=r"timed out after 0.2 s in phase timed"):
        timed_loop(sleep_fn(5.0), min_iters=10**6, min_s=60, max_iters=None, deadline=Deadline(0.2))
    assert time.perf_counter() - t0 < 1.0


def test_warmup_counts_the_first_inference_and_needs_both_rules() -> None:
    start = time.perf_counter_ns()
    assert warmup_loop(sleep_fn(3.0), 4, 0.0, Deadline(30), start, done=1) == 4
    start = time.perf_counter_ns()
    n = warmup_loop(sleep_fn(0.0), 2, 0.1, Deadline(30), start, done=1)
    assert n > 2 and time.perf_counter_ns() - start >= 100_000_000


def test_make_input_is_seeded_normal_of_the_real_shape() -> None:
    a, b = make_input((2, 3, 4), "float32", 7), make_input((2, 3, 4), "float32", 7)
    assert a.shape == (2, 3, 4) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, make_input((2, 3, 4), "float32", 8))
    assert make_input((5,), "uint8", 0).dtype == np.uint8


def run_inprocess(tmp_path: Path, spec: dict) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def sleep_spec(tmp_path: Path, **over) -> dict:
    model = tmp_path / "model.bin"
    model.write_bytes(b"not a real model")
    over.setdefault("runtime_options", {"latency_ms": 1.0})
    spec = lib.make_spec(model, runtime="sleep", **over)
    spec["measure"].update(min_s=0.1, min_iters=20, warmup_s=0.02)
    return spec


def test_sleep_job_end_to_end_in_process(tmp_path: Path) -> None:
    ev = tmp_path / "eval.npz"
    y = np.array([0, 1, 0, 0, 2, 0, 0, 3, 9], dtype=np.int64)  # 9 samples, batch 4 -> 8 used
    np.savez(ev, x=np.zeros((9, 1, 8, 8), np.float32), y=y)
    rc, events = run_inprocess(tmp_path, sleep_spec(tmp_path, eval={"path": str(ev), "max_samples": None}))
    assert rc == 0
    assert [e["event"] for e in events] == ["facts", "progress", "progress", "progress", "progress", "result"]
    assert [e["phase"] for e in lib.by_event(events, "progress")] == ["load", "warmup", "timed", "accuracy"]
    assert events[0]["runtime"]["name"] == "sleep"
    res = events[-1]
    lat = res["latency"]
    assert lat["n"] == len(res["samples_ns"]) >= 20 and lat["window_s"] >= 0.1
    assert 1.0 <= lat["p50_ms"] < 5.0
    assert lat["p50_ci_ms"][0] <= lat["p50_ms"] <= lat["p50_ci_ms"][1]
    assert res["warmup"]["iters"] >= 5 and res["warmup"]["s"] >= 0.02
    assert res["first_infer_ms"] >= 1.0 and res["load_s"] >= 0
    assert res["eval_n"] == 8 and res["accuracy"] == pytest.approx(5 / 8)  # sleep predicts 0
    assert res["peak_rss_mb"] >= res["rss_before_load_mb"] > 0
    assert res["runtime"]["options"] == {"latency_ms": 1.0, "fail_on": None}
    assert res["threads"] == 1 and res["precision"] == "f32"


@pytest.mark.parametrize(
    "over,kind,needle",
    [
        ({"protocol": 99}, "ProtocolError", "protocol 99"),
        ({"runtime": "tensorflow"}, "ProtocolError", "unknown runtime 'tensorflow'"),
        ({"runtime_options": {"latency_ms": 1.0, "turbo": True}}, "ProtocolError", "'turbo'"),
        ({"measure": {"min_iters": True}}, "ProtocolError", "measure.min_iters"),
        ({"runtime_options": {"fail_on": "load"}}, "ArtifactIncompatible", "fail_on=load"),
        ({"runtime_options": {"fail_on": "infer"}}, "MeasurementError", "phase warmup"),
        ({"measure": {"timeout_s": 0.3, "min_s": 30}}, "MeasurementError", "timed out after 0.3 s in phase timed"),
    ],
)
def test_errors_become_one_error_event(tmp_path: Path, over: dict, kind: str, needle: str) -> None:
    spec = sleep_spec(tmp_path)
    for key, value in over.items():
        spec[key] = dict(spec[key], **value) if key == "measure" else value
    rc, events = run_inprocess(tmp_path, spec)
    assert rc == 1
    assert events[0]["event"] == "facts"
    err = events[-1]
    assert err["event"] == "error" and err["kind"] == kind, err
    assert needle in err["message"]
    assert not lib.by_event(events, "result")


def test_missing_key_and_unreadable_spec(tmp_path: Path) -> None:
    spec = sleep_spec(tmp_path)
    del spec["input"]
    rc, events = run_inprocess(tmp_path, spec)
    assert rc == 1 and events[-1]["kind"] == "ProtocolError" and "input" in events[-1]["message"]
    out = io.StringIO()
    assert main(["measure", str(tmp_path / "nope.json")], out=out) == 1
    facts, err = [json.loads(line) for line in out.getvalue().splitlines()]
    assert facts["event"] == "facts" and facts["runtime"] is None and err["kind"] == "ProtocolError"


def test_artifact_checks(tmp_path: Path) -> None:
    spec = sleep_spec(tmp_path)
    spec["artifact"]["sha256"] = "0" * 64
    rc, events = run_inprocess(tmp_path, spec)
    assert rc == 1 and events[-1]["kind"] == "ArtifactIncompatible" and "sha256" in events[-1]["message"]
    spec["artifact"] = {"path": str(tmp_path / "missing.onnx")}
    rc, events = run_inprocess(tmp_path, spec)
    assert events[-1]["kind"] == "ArtifactIncompatible" and "not found" in events[-1]["message"]


def test_unavailable_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        RUNTIMES["sleep"], "probe",
        classmethod(lambda cls: {"name": "sleep", "version": None, "available": False, "devices": [],
                                 "reason": "ImportError: no sleep here"}),
    )
    rc, events = run_inprocess(tmp_path, sleep_spec(tmp_path))
    assert rc == 1 and events[-1]["kind"] == "RuntimeUnavailable" and "no sleep here" in events[-1]["message"]


def test_usage_errors_exit_2() -> None:
    assert main([], out=io.StringIO()) == 2
    assert main(["measure"], out=io.StringIO()) == 2
    assert main(["frobnicate"], out=io.StringIO()) == 2


def test_watchdog_ends_a_hung_call(tmp_path: Path) -> None:
    """A runtime call that never returns is cut off by the watchdog with its phase."""
    spec = sleep_spec(tmp_path, runtime_options={"latency_ms": 20000.0})
    spec["measure"]["timeout_s"] = 0.5
    t0 = time.monotonic()
    rc, events, _ = lib.run_agent(["-m", "devices.agent", "measure", str(lib.write_spec(tmp_path, spec))])
    assert rc == 1 and time.monotonic() - t0 < 10
    err = events[-1]
    assert err["kind"] == "MeasurementError" and "phase warmup" in err["message"], err
