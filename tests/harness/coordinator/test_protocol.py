"""The coordinator's reading of agent output: results, errors, crashes, garbage."""

from __future__ import annotations

import json

from devices.agent.spec import Artifact, MeasureSettings, parse_spec, spec_to_json
from harness.coordinator.protocol import encode_spec, make_spec, parse_events, result_from_events
from harness.records import Job, JobSettings

FACTS = {"event": "facts", "protocol": 1, "python": "3.8.10"}
RESULT = {
    "event": "result", "job_id": "j",
    "latency": {"n": 3, "p50_ms": 2.0, "p90_ms": 3.0, "p95_ms": 3.0, "p99_ms": 3.0, "mean_ms": 2.0, "std_ms": 1.0,
                "cv": 0.5, "min_ms": 1.0, "max_ms": 3.0, "throughput_ips": 500.0, "window_s": 0.006,
                "p50_ci_ms": [1.0, 3.0]},
    "samples_ns": [1000000, 2000000, 3000000], "peak_rss_mb": 100.0, "accuracy": 0.5, "precision": "f32",
}  # fmt: skip


def lines(*events: object) -> str:
    return "\n".join(e if isinstance(e, str) else json.dumps(e) for e in events) + "\n"


def test_result_maps_to_store_metrics() -> None:
    r = result_from_events(parse_events(lines(FACTS, {"event": "progress", "phase": "timed"}, RESULT)), 0, "")
    assert r.status == "ok" and r.metrics["p50_ms"] == 2.0 and r.metrics["n_iters"] == 3
    assert r.metrics["throughput"] == 500.0 and (r.metrics["p50_ci_lo_ms"], r.metrics["p50_ci_hi_ms"]) == (1.0, 3.0)
    assert list(r.samples_ns) == [1000000, 2000000, 3000000] and r.facts["python"] == "3.8.10"


def test_error_event_becomes_failed_result() -> None:
    err = {"event": "error", "kind": "ArtifactIncompatible", "message": "bad graph"}
    r = result_from_events(parse_events(lines(FACTS, err)), 1, "")
    assert r.status == "failed" and r.error == "ArtifactIncompatible: bad graph"


def test_crash_and_garbage_keep_stderr_tail() -> None:
    r = result_from_events(parse_events(lines(FACTS, "Segmentation fault", '{"event": "progress"')), -11, "boom\n")
    assert r.status == "failed" and "code -11" in r.error and "boom" in r.error


def test_a_suites_auto_threads_is_null_on_the_wire() -> None:
    from harness.config.suite import MeasureSettings as SuiteMeasure

    job = Job("m", "fp32", "local", "openvino", JobSettings(SuiteMeasure(threads="auto", timeout_s=5).to_wire()))
    spec = json.loads(encode_spec(make_spec(job, "j1", Artifact("/c/a.onnx", "onnx", "ab"), (1, 3, 8, 8), None)))
    assert spec["measure"]["threads"] is None and spec["eval"] is None and spec["input"]["shape"] == [1, 3, 8, 8]
    assert spec["protocol"] == 1 and "canary" not in spec and spec["measure"]["timeout_s"] == 5.0


def test_the_suites_defaults_are_the_wires() -> None:
    """One definition of a job's defaults: a suite that says nothing sends a bare spec's."""
    from harness.config.suite import MeasureSettings as SuiteMeasure

    assert SuiteMeasure().to_wire() == MeasureSettings()
    bare = {"protocol": 1, "job_id": "j", "runtime": "onnxruntime", "artifact": {"path": "/a.onnx"},
            "input": {"shape": [1, 3], "dtype": "float32"}}
    assert parse_spec(bare).measure == MeasureSettings()


def test_spec_to_json_and_parse_spec_are_inverse() -> None:
    from harness.config.suite import MeasureSettings as SuiteMeasure

    measure = SuiteMeasure.model_validate({"target": {"percentile": 90}, "quiet": {"wait_s": 2}, "max_iters": 9,
                                           "threads": 3, "min_s": 1}).to_wire()
    job = Job("m", "int8", "local", "openvino", JobSettings(measure, {"device": "CPU"}, canary_block_s=0.5))
    from harness.coordinator.protocol import canary_spec

    spec = make_spec(job, "j", Artifact("/a.xml", "openvino-ir", "0" * 64, "/a.bin"), (1, 3, 8, 8), "/e.npz",
                     canary=canary_spec(job, Artifact("/c.onnx", "onnx", "1" * 64), (1, 3, 224, 224)))
    assert parse_spec(json.loads(json.dumps(spec_to_json(spec)))) == spec


def test_a_spec_the_agent_would_refuse_fails_on_the_coordinator() -> None:
    import pytest

    from harness.errors import AgentError

    job = Job("m", "fp32", "local", "onnxruntime", JobSettings(MeasureSettings(min_iters=-1)))
    with pytest.raises(AgentError, match="measure.min_iters must be >= 0"):
        encode_spec(make_spec(job, "j", Artifact("/a.onnx"), (1, 3), None))


def test_the_agent_accepts_every_inventory_power_and_cooldown_setting() -> None:
    """The coordinator's spec and the agent's parser agree: each power source the inventory
    allows, a command meter in joules, and a delta-to-idle cooldown reach the agent intact."""
    from typing import get_args

    from harness.config.inventory import Device, PowerSource
    from harness.coordinator.protocol import telemetry_spec

    job = Job("m", "fp32", "orin", "onnxruntime", JobSettings(MeasureSettings(min_iters=5)))
    for source in get_args(PowerSource):
        device = Device.model_validate({
            "name": "orin", "kind": "jetson", "host": "h", "runtimes": ["onnxruntime"],
            "power": {"source": source, "command": "meter --read", "unit": "J"},
            "cooldown": {"max_temp_c": 55, "idle_temp_c": 40, "delta_c": 3, "max_wait_s": 30},
        })  # fmt: skip
        spec = parse_spec(json.loads(encode_spec(make_spec(job, "j", Artifact("/a.onnx"), (1, 3), None,
                                                           telemetry=telemetry_spec(device)))))
        tel = spec.telemetry
        assert (tel.power.source, tel.power.command, tel.power.unit) == (source, "meter --read", "J")
        assert (tel.cooldown.max_temp_c, tel.cooldown.idle_temp_c, tel.cooldown.delta_c) == (55, 40, 3)


def test_telemetry_fields_are_kept_in_the_details() -> None:
    event = dict(RESULT, energy_mj=1.5, avg_power_w=4.2, throttled=True, throttle_reason="clock dropped",
                 power_source="ina3221", idle_power_w=3.1, telemetry={"cooldown": {"cooldown_s": 0}})
    r = result_from_events(parse_events(lines(FACTS, event)), 0, "")
    assert (r.metrics["energy_mj"], r.metrics["avg_power_w"], r.metrics["throttled"]) == (1.5, 4.2, True)
    assert r.details["throttle_reason"] == "clock dropped" and r.details["power_source"] == "ina3221"
    assert r.details["idle_power_w"] == 3.1 and r.details["telemetry"]["cooldown"] == {"cooldown_s": 0}


def test_marks_window_details_and_engine_build_time() -> None:
    stop = {"reason": "target", "percentile": 99, "interval_ms": [2.9, 3.05], "confidence": 0.95, "rel_error": 0.017}
    board = {"other_cpu_pct": 40.0, "load_per_cpu": 0.2, "waited_s": 30.0}
    event = dict(RESULT, noisy="other processes used 40.0% of the CPUs (max_other_cpu_pct 25)",
                 unstable="CV 50.0% > 2.5% (trtexec-style CV rule)", stop=stop, board_state=board,
                 window={"start_unix": 1700000000.5, "end_unix": 1700000003.5},
                 runtime={"name": "tensorrt", "version": "10.3", "options": {"engine_build_s": 41.5}})
    r = result_from_events(parse_events(lines(FACTS, event)), 0, "")
    assert r.metrics["noisy"].startswith("other processes") and r.metrics["unstable"].startswith("CV 50.0%")
    assert r.metrics["engine_build_s"] == 41.5
    assert r.details["stop"] == stop and r.details["board_state"] == board
    assert r.details["window"] == {"start_unix": 1700000000.5, "end_unix": 1700000003.5}


def test_an_older_agent_gives_no_marks() -> None:
    r = result_from_events(parse_events(lines(FACTS, dict(RESULT, runtime={"name": "onnxruntime", "options": {}}))),
                           0, "")
    assert r.metrics["noisy"] is None and r.metrics["unstable"] is None and r.metrics["engine_build_s"] is None
    assert not {"stop", "board_state", "window"} & set(r.details)
    r = result_from_events(parse_events(lines(FACTS, dict(RESULT, noisy="", unstable=None))), 0, "")
    assert r.metrics["noisy"] is None and r.metrics["engine_build_s"] is None


def test_suite_target_and_quiet_reach_the_agent_intact() -> None:
    from devices.agent.spec import QuietSettings, TargetSettings
    from harness.config.suite import MeasureSettings as SuiteMeasure

    for measure, target, quiet in [
        (SuiteMeasure(), None, QuietSettings(25.0, 1.0, 100.0, 30.0)),
        (SuiteMeasure.model_validate({"target": {"percentile": 95, "rel_error": 0.05, "confidence": 0.9},
                                      "quiet": None}), TargetSettings(95.0, 0.05, 0.9), None),
        (SuiteMeasure.model_validate({"target": {}, "quiet": {"wait_s": 0, "min_free_mb": 512}}),
         TargetSettings(99.0, 0.02, 0.95), QuietSettings(25.0, 1.0, 512.0, 0.0)),
    ]:
        job = Job("m", "fp32", "local", "onnxruntime", JobSettings(measure.to_wire()))
        spec = parse_spec(json.loads(encode_spec(make_spec(job, "j", Artifact("/a.onnx"), (1, 3), None))))
        assert (spec.measure.target, spec.measure.quiet) == (target, quiet)


def test_the_interleaved_canary_reaches_the_agent_and_comes_back_per_window() -> None:
    from harness.coordinator.protocol import canary_spec

    job = Job("m", "int8", "local", "openvino", JobSettings(MeasureSettings(min_iters=5), {"device": "CPU"},
                                                            canary_block_s=0.3))
    spec = make_spec(job, "j", Artifact("/a.onnx"), (1, 3, 8, 8), None,
                     canary=canary_spec(job, Artifact("/c.onnx", "onnx", "1" * 64), (1, 3, 224, 224)))
    raw = json.loads(encode_spec(spec))
    got = parse_spec(raw).canary
    assert raw["protocol"] == 2 and got is not None
    assert (got.runtime, got.artifact.path, got.artifact.sha256) == ("openvino", "/c.onnx", "1" * 64)
    assert got.input.shape == (1, 3, 224, 224) and got.runtime_options == {"device": "CPU"} and got.block_s == 0.3
    event = {"event": "result", "latency": {"n": 5, "p50_ms": 1.0}, "canary": {"latency": {"p50_ms": 5.0, "p90_ms": 5.5,
                                                                                   "p99_ms": 6.0}, "runtime": "openvino"}}
    res = result_from_events([event], 0, "")
    assert (res.metrics["canary_p50_ms"], res.metrics["canary_p90_ms"], res.metrics["canary_p99_ms"]) == (5.0, 5.5, 6.0)
    assert res.details["canary"]["runtime"] == "openvino"
    plain = result_from_events([{"event": "result", "latency": {"n": 5, "p50_ms": 1.0}}], 0, "")
    assert plain.metrics["canary_p50_ms"] is None and "canary" not in plain.details
