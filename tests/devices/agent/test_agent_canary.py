"""The canary interleaved with the job in its process (spec key ``canary``): blocks alternate,
samples stay apart, the job's stop rule, memory and energy are its own."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.cli import main
from devices.agent.errors import ProtocolError
from devices.agent.canary import POWER_REASON, interleaved_loop
from devices.agent.loops import Deadline
from devices.agent.spec import MeasureSettings, TargetSettings, parse_spec


def settings(**over: object) -> MeasureSettings:
    base = dict(warmup_iters=2, warmup_s=0.0, min_iters=20, min_s=0.1, max_iters=None, timeout_s=60.0, threads=1,
                seed=0)
    base.update(over)
    return MeasureSettings(**base)  # type: ignore[arg-type]


def sleeper(tag: str, log: list[tuple[str, float]], latency_s: float):  # noqa: ANN201
    def fn() -> None:
        log.append((tag, time.perf_counter()))
        time.sleep(latency_s)
    return fn


def runs(log: list[tuple[str, float]]) -> list[tuple[str, int]]:
    """The log as (tag, length) runs."""
    out: list[tuple[str, int]] = []
    for tag, _ in log:
        if out and out[-1][0] == tag:
            out[-1] = (tag, out[-1][1] + 1)
        else:
            out.append((tag, 1))
    return out


def test_blocks_alternate_job_first_and_last_and_samples_stay_apart() -> None:
    log: list[tuple[str, float]] = []
    samples, window_ns, reason, checks, canary, canary_ns = interleaved_loop(
        sleeper("job", log, 0.002), sleeper("canary", log, 0.004), 0.02, settings(), Deadline(60), 0.8)
    blocks = runs(log)
    assert [t for t, _ in blocks[:2]] == ["job", "canary"] and blocks[-1][0] == "job"
    assert all(a[0] != b[0] for a, b in zip(blocks, blocks[1:]))  # strictly alternating
    assert sum(n for t, n in blocks if t == "job") == len(samples) >= 20
    assert sum(n for t, n in blocks if t == "canary") == len(canary) > 0
    assert reason == "min_reached" and checks == 0
    assert window_ns >= 0.1e9 and window_ns == pytest.approx(sum(samples), rel=0.05)  # the job's own time
    assert canary_ns == pytest.approx(sum(canary), rel=0.05)
    assert min(samples) >= 2e6 and np.median(samples) < 3.5e6  # no canary sample among the job's
    assert min(canary) >= 4e6
    for tag, n in blocks[:-1]:  # each block lasts about block_s: 0.02 s of 2 or 4 ms iterations
        assert n <= (11 if tag == "job" else 6)


def test_max_iters_caps_the_job_not_the_canary() -> None:
    log: list[tuple[str, float]] = []
    samples, _, reason, _, canary, _ = interleaved_loop(
        sleeper("job", log, 0.001), sleeper("canary", log, 0.001), 0.005, settings(max_iters=7, min_s=5.0),
        Deadline(60), 0.8)
    assert len(samples) == 7 and reason == "max_iters" and len(canary) > 0


def test_a_target_is_checked_after_job_blocks_only() -> None:
    log: list[tuple[str, float]] = []
    target = TargetSettings(percentile=50.0, rel_error=5.0, confidence=0.9)
    samples, _, reason, checks, canary, _ = interleaved_loop(
        sleeper("job", log, 0.001), sleeper("canary", log, 0.001), 0.01,
        settings(min_iters=30, min_s=0.0, target=target), Deadline(60), 0.8)
    assert reason == "target" and checks >= 1 and len(samples) >= 30 and runs(log)[-1][0] == "job"


def canary_spec(tmp_path: Path, latency_ms: float = 3.0, **over: object) -> dict:
    art = tmp_path / "canary.bin"
    art.write_bytes(b"canary")
    out = {"runtime": "sleep", "artifact": {"path": str(art), "format": "onnx", "sha256": None},
           "input": {"shape": [1, 3], "dtype": "float32"}, "runtime_options": {"latency_ms": latency_ms},
           "block_s": 0.02}
    out.update(over)
    return out


def job_spec(tmp_path: Path, **over: object) -> dict:
    model = tmp_path / "model.bin"
    model.write_bytes(b"model")
    spec = lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": 1.0}, protocol=2,
                         canary=canary_spec(tmp_path))
    spec["measure"].update(min_s=0.2, min_iters=20, warmup_s=0.02, warmup_iters=2)
    spec.update(over)
    return spec


def measure(tmp_path: Path, spec: dict) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_result_carries_the_canary_apart_from_the_job(tmp_path: Path) -> None:
    rc, events = measure(tmp_path, job_spec(tmp_path))
    res = events[-1]
    assert rc == 0 and res["event"] == "result", events[-1]
    assert 1.0 <= res["latency"]["p50_ms"] < 2.0 and res["canary"]["runtime"] == "sleep"
    assert 3.0 <= res["canary"]["latency"]["p50_ms"] < 4.5 and res["canary"]["latency"]["n"] > 0
    assert len(res["samples_ns"]) == res["latency"]["n"] >= 20  # the canary's samples are not the job's
    assert res["latency"]["window_s"] >= 0.2 and res["stop"]["reason"] == "min_reached"
    phases = [e["phase"] for e in events if e["event"] == "progress"]
    assert phases.index("warmup") < phases.index("canary") < phases.index("timed")


def test_energy_over_a_shared_window_is_not_reported(tmp_path: Path) -> None:
    meter = tmp_path / "meter.py"
    meter.write_text("print('2.5 W')\n")
    spec = job_spec(tmp_path, telemetry={"power": {"source": "command", "command": f"{sys.executable} {meter}"},
                                         "idle_s": 0})
    spec["measure"]["min_s"] = 0.4
    rc, events = measure(tmp_path, spec)
    res = events[-1]
    assert rc == 0 and res["power_source"] == "command"
    assert res["energy_mj"] is None and res["avg_power_w"] is None and res["power_reason"] == POWER_REASON


def test_a_real_onnx_runtime_canary_next_to_a_real_job(tmp_path: Path) -> None:
    """ONNX Runtime both: the job's peak memory is read before the canary's session exists."""
    job, canary = lib.write_classifier(tmp_path / "job.onnx"), lib.write_classifier(tmp_path / "canary.onnx", seed=1)
    spec = lib.make_spec(job, protocol=2, canary={
        "runtime": "onnxruntime", "artifact": {"path": str(canary), "format": "onnx", "sha256": None},
        "input": {"shape": list(lib.INPUT_SHAPE), "dtype": "float32"}, "runtime_options": {}, "block_s": 0.05})
    rc, events = measure(tmp_path, spec)
    res = events[-1]
    assert rc == 0 and res["event"] == "result", res
    assert res["canary"]["latency"]["n"] > 0 and res["canary"]["runtime"] == "onnxruntime"
    assert res["latency"]["n"] >= 20 and res["peak_rss_mb"] > 0


@pytest.mark.parametrize("canary, needle", [
    ({"block_s": 0}, "canary.block_s must be > 0"),
    ({"block_s": None}, "canary.block_s must be int/float"),
    ({"colour": 1}, "unknown spec key canary.colour"),
    ({"input": {"shape": [], "dtype": "float32"}}, "canary.input.shape must be a non-empty list"),
    ({"artifact": {"format": "onnx"}}, "missing key canary.artifact.path"),
    ({"runtime_options": []}, "canary.runtime_options must be an object"),
])
def test_canary_spec_faults_name_the_key(tmp_path: Path, canary: dict, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        parse_spec(job_spec(tmp_path, canary=canary_spec(tmp_path, **canary)))


def test_missing_canary_key_and_spec_without_canary(tmp_path: Path) -> None:
    c = canary_spec(tmp_path)
    del c["block_s"]
    with pytest.raises(ProtocolError, match=r"missing key canary\.block_s"):
        parse_spec(job_spec(tmp_path, canary=c))
    assert parse_spec(job_spec(tmp_path, canary=None)).canary is None


@pytest.mark.parametrize("fault, kind, needle", [
    ({"runtime": "nope"}, "ProtocolError", "unknown canary runtime 'nope'"),
    ({"runtime_options": {"colour": 1}}, "ProtocolError", "unknown runtime_options key 'colour'"),
    ({"artifact": {"path": "/nonexistent/canary.onnx"}}, "ArtifactIncompatible", "not found on the board"),
    ({"artifact": {"path": "CANARY", "sha256": "0" * 64}}, "ArtifactIncompatible", "canary artifact"),
])
def test_canary_faults_are_the_jobs_error_events(tmp_path: Path, fault: dict, kind: str, needle: str) -> None:
    c = canary_spec(tmp_path, **fault)
    if c["artifact"]["path"] == "CANARY":
        c["artifact"]["path"] = canary_spec(tmp_path)["artifact"]["path"]
    rc, events = measure(tmp_path, job_spec(tmp_path, canary=c))
    err = events[-1]
    assert rc != 0 and err["event"] == "error" and err["kind"] == kind and needle in err["message"], err


def test_a_canary_its_runtime_cannot_read_fails_the_job_saying_so(tmp_path: Path) -> None:
    c = canary_spec(tmp_path, runtime="onnxruntime", runtime_options={})
    c["artifact"]["format"] = "tflite"
    rc, events = measure(tmp_path, job_spec(tmp_path, canary=c))
    assert rc == 1 and events[-1]["kind"] == "ArtifactIncompatible"
    assert events[-1]["message"] == "canary: onnxruntime cannot read tflite artifacts (it reads: onnx)"
