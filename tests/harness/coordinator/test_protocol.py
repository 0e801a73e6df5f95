"""The coordinator's reading of agent output: results, errors, crashes, garbage."""

from __future__ import annotations

import json

from harness.coordinator.protocol import make_spec, parse_events, result_from_events
from harness.records import Job

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


def test_spec_auto_threads_is_null() -> None:
    job = Job("m", "fp32", "local", "openvino", {"measure": {"threads": "auto", "timeout_s": 5}, "runtime_options": {}})
    spec = make_spec(job, "j1", "/c/a.onnx", "ab", (1, 3, 8, 8), None)
    assert spec["measure"]["threads"] is None and spec["eval"] is None and spec["input"]["shape"] == [1, 3, 8, 8]


def test_the_agent_accepts_every_inventory_power_and_cooldown_setting() -> None:
    """The coordinator's spec and the agent's parser agree: each power source the inventory
    allows, a command meter in joules, and a delta-to-idle cooldown reach the agent intact."""
    from typing import get_args

    from devices.agent.spec import parse_spec
    from harness.config.inventory import Device, PowerSource
    from harness.coordinator.protocol import telemetry_spec

    job = Job("m", "fp32", "orin", "onnxruntime", {"measure": {"min_iters": 5, "threads": "auto"}})
    for source in get_args(PowerSource):
        device = Device.model_validate({
            "name": "orin", "kind": "jetson", "host": "h", "runtimes": ["onnxruntime"],
            "power": {"source": source, "command": "meter --read", "unit": "J"},
            "cooldown": {"max_temp_c": 55, "idle_temp_c": 40, "delta_c": 3, "max_wait_s": 30},
        })  # fmt: skip
        spec = parse_spec(json.loads(json.dumps(make_spec(job, "j", "/a.onnx", "0" * 64, (1, 3), None,
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
