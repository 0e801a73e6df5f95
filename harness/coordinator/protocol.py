"""The coordinator's side of the agent protocol: the job spec out, JSON lines back."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from harness.config import Device
from harness.records import Job, JobResult

PROTOCOL = 1
CANARY_PROTOCOL = 2  # a spec with the interleaved canary: an older agent says "redeploy" instead of "unknown key"
# Measure settings the coordinator acts on itself (how many processes, in which order): not the agent's.
COORDINATOR_MEASURE_KEYS = ("repeats", "order")
log = logging.getLogger("edge_harness.coordinator")


# Result keys of the agent's telemetry that are not store columns: kept in the result's details.
TELEMETRY_DETAILS = (
    "peak_power_w", "idle_power_w", "power_source", "power_reason", "throttle_reason", "cooldown_s",
    "cooldown_timed_out", "temp_before_c", "temp_after_c", "ram_delta_mb", "telemetry",
)  # fmt: skip
# Percentiles of the interleaved canary kept with each window (the gate's covariates).
CANARY_PERCENTILES = (50, 90, 99)
# Result keys about the timed window kept in the details: why it stopped (and the target's
# interval), the board's state before it, its start and end on the board's clock, the
# interleaved canary's latency summary.
WINDOW_DETAILS = ("stop", "board_state", "window", "canary")


def telemetry_spec(device: Device) -> dict[str, Any]:
    """The board's power source and cooldown policy, as the agent's spec takes them."""
    return {"power": device.power.model_dump(), "cooldown": device.cooldown.model_dump()}


def make_spec(job: Job, job_id: str, artifact: str, sha256: str, input_shape: tuple[int, ...],
              eval_path: str | None, fmt: str = "onnx", weights: str | None = None,
              telemetry: dict[str, Any] | None = None) -> dict[str, Any]:
    measure = {k: v for k, v in job.settings["measure"].items() if k not in COORDINATOR_MEASURE_KEYS}
    if measure.get("threads") == "auto":
        measure["threads"] = None
    return {
        "telemetry": telemetry,
        "protocol": PROTOCOL,
        "job_id": job_id,
        "runtime": job.runtime,
        **_model(artifact, sha256, input_shape, fmt, weights),
        "eval": {"path": eval_path, "max_samples": None} if eval_path else None,
        "measure": measure,
        "runtime_options": job.settings.get("runtime_options", {}),
    }


def _model(artifact: str, sha256: str, input_shape: tuple[int, ...], fmt: str, weights: str | None) -> dict[str, Any]:
    """A spec's (or its canary's) ``artifact`` and ``input`` keys."""
    return {"artifact": {"path": artifact, "format": fmt, "sha256": sha256, "weights": weights},
            "input": {"shape": list(input_shape), "dtype": "float32"}}


def canary_spec(job: Job, artifact: str, sha256: str, input_shape: tuple[int, ...], fmt: str = "onnx",
                weights: str | None = None) -> dict[str, Any]:
    """The spec's ``canary``: the board canary on the job's runtime and options, in blocks."""
    return {
        "runtime": job.runtime,
        **_model(artifact, sha256, input_shape, fmt, weights),
        "runtime_options": job.settings.get("runtime_options", {}),
        "block_s": job.canary_block_s,
    }


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Every JSON object line; anything else on stdout is an agent bug, logged and skipped."""
    events = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            log.warning("agent wrote a non-JSON line to stdout: %.200s", line)
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def result_from_events(events: list[dict[str, Any]], exit_code: int, stderr: str) -> JobResult:
    """Turn the agent's events into a JobResult; a silent or crashed agent is a failure with its stderr."""
    facts = next((e for e in events if e["event"] == "facts"), {})
    facts = {k: v for k, v in facts.items() if k != "event"}
    for event in events:
        if event["event"] == "error":
            return JobResult("failed", f"{event.get('kind', 'AgentError')}: {event.get('message', '')}", facts=facts)
        if event["event"] == "result":
            details = {"runtime": event.get("runtime"), "warmup": event.get("warmup"),
                       **{k: event[k] for k in TELEMETRY_DETAILS + WINDOW_DETAILS if k in event}}
            return JobResult("ok", metrics=_metrics(event), samples_ns=np.asarray(event.get("samples_ns", []), dtype=np.int64),
                             facts=facts, details=details)
    tail = stderr.strip().splitlines()[-5:]
    return JobResult("failed", f"agent exited with code {exit_code} and no result" + (f": {' | '.join(tail)}" if tail else ""),
                     facts=facts)


def _metrics(event: dict[str, Any]) -> dict[str, Any]:
    lat = event.get("latency", {})
    ci = lat.get("p50_ci_ms") or (None, None)
    out = {k: lat.get(k) for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "cv", "min_ms", "max_ms", "window_s")}
    out.update(throughput=lat.get("throughput_ips"), n_iters=lat.get("n"), p50_ci_lo_ms=ci[0], p50_ci_hi_ms=ci[1])
    for key in ("peak_rss_mb", "rss_before_load_mb", "accuracy", "eval_n", "load_s", "first_infer_ms", "threads",
                "precision", "energy_mj", "avg_power_w", "throttled"):
        out[key] = event.get(key)
    canary = (event.get("canary") or {}).get("latency") or {}
    for q in CANARY_PERCENTILES:
        out[f"canary_p{q}_ms"] = canary.get(f"p{q}_ms")
    for key in ("noisy", "unstable"):  # the mark's reason, or None (an older agent sends neither)
        value = event.get(key)
        out[key] = value if isinstance(value, str) and value else None
    options = (event.get("runtime") or {}).get("options") or {}
    out["engine_build_s"] = options.get("engine_build_s") if isinstance(options, dict) else None  # TensorRT only
    return out
