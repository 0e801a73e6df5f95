"""The coordinator's side of the agent protocol: the job spec out, JSON lines back."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from devices.agent.errors import ProtocolError
from devices.agent.spec import (
    Artifact,
    CanarySpec,
    EvalSet,
    JobSpec,
    ModelInput,
    NamedInput,
    TaskSettings,
    parse_spec,
    spec_to_json,
)
from devices.agent.telemetry.settings import CooldownSettings, PowerSettings, TelemetrySettings
from harness.config import Device
from harness.errors import AgentError, agent_failure
from devices.agent.metrics import CANARY_TABLE, METRIC_TABLE
from harness.records import Job, JobResult

if TYPE_CHECKING:
    from harness.variants.feeds import GraphInput

log = logging.getLogger("edge_harness.coordinator")


# Result keys of the agent's telemetry that are not store columns: kept in the result's details.
TELEMETRY_DETAILS = (
    "peak_power_w", "idle_power_w", "power_source", "power_reason", "throttle_reason", "cooldown_s",
    "cooldown_timed_out", "temp_before_c", "temp_after_c", "ram_delta_mb", "telemetry",
)  # fmt: skip
# Result keys about the timed window kept in the details: why it stopped (and the target's
# interval), the board's state before it, its start and end on the board's clock, the
# interleaved canary's latency summary, the operating point the board measured at (``scenario``).
WINDOW_DETAILS = ("stop", "board_state", "window", "canary", "scenario")
# Result keys the agent sends as objects (the rest of the details are plain values).
OBJECT_DETAILS = ("runtime", "warmup", "stop", "board_state", "window", "canary", "telemetry", "power_mode", "scenario")
# The result's ``power_mode``: the mode asked for, the board's state before and read back after
# applying it, whether it was restored. Kept in the details; the state read back is also the
# board's facts (its fingerprint for this result), beside the name.
POWER_DETAILS = ("power_mode",)
# The most of an agent's failure message kept (the stored reason is one line of 300; the rest
# goes to the job's details).
MAX_REASON_CHARS = 1000


def telemetry_spec(device: Device) -> TelemetrySettings:
    """The board's power source and cooldown policy, as the agent's spec takes them."""
    return TelemetrySettings(power=PowerSettings(**device.power.model_dump()),
                             cooldown=CooldownSettings(**device.cooldown.model_dump()))


def make_spec(job: Job, job_id: str, artifact: Artifact, input_shape: tuple[int, ...], eval_path: str | None,
              telemetry: TelemetrySettings | None = None, canary: CanarySpec | None = None,
              task: TaskSettings | None = None, inputs: Sequence[GraphInput] = ()) -> JobSpec:
    """The job's spec for its board, from its typed settings (``task``: what the eval set
    measures, ``harness.tasks``).

    ``inputs``: every input of the model's graph as it is fed (``Variant.inputs``, read from the
    graph at build time; empty where unknown, a .tflite). A model with several is sent them all
    (the spec's ``inputs``, the first also as ``input``); a one-input model's spec is ``input``
    alone, ``input_shape`` in the graph's dtype (float32 where unknown)."""
    wired = tuple(NamedInput(g.name, tuple(int(d) for d in g.shape), g.dtype) for g in inputs)
    if len(wired) > 1:
        first = ModelInput(wired[0].shape, wired[0].dtype)
    else:
        first, wired = ModelInput(tuple(input_shape), wired[0].dtype if wired else "float32"), ()
    return JobSpec(job_id=job_id, runtime=job.runtime, artifact=artifact, input=first,
                   eval=EvalSet(eval_path, task=task) if eval_path else None, measure=job.settings.measure,
                   runtime_options=dict(job.settings.runtime_options), telemetry=telemetry or TelemetrySettings(),
                   canary=canary, inputs=wired, power_mode=job.settings.power_mode)


def canary_spec(job: Job, artifact: Artifact, input_shape: tuple[int, ...]) -> CanarySpec:
    """The spec's ``canary``: the board canary on the job's runtime and options, in blocks."""
    assert job.settings.canary_block_s is not None, "the plan interleaves no canary with this job"
    return CanarySpec(job.runtime, artifact, ModelInput(tuple(input_shape)), dict(job.settings.runtime_options),
                      job.settings.canary_block_s)


def encode_spec(spec: JobSpec) -> str:
    """The spec's JSON text, read back with the agent's own parser first: a spec the agent
    would refuse fails its job here, naming the key, instead of on the board."""
    text = json.dumps(spec_to_json(spec), indent=1)
    try:
        parse_spec(json.loads(text))
    except ProtocolError as e:
        raise AgentError(f"the job's spec is invalid: {e}") from None
    return text


def load_line(line: str) -> dict[str, Any] | None:
    """One stdout line as a JSON object; None for anything else (not JSON, nested past the
    parser's recursion limit, not an object). The transport already dropped oversized lines."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        log.warning("agent wrote a non-JSON line to stdout: %.200s", line)
        return None
    return value if isinstance(value, dict) else None


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Every line that is a JSON object naming its event; anything else on stdout is an agent
    bug, logged and skipped."""
    events = []
    for line in stdout.splitlines():
        event = load_line(line.strip()) if line.strip() else None
        if event is not None and isinstance(event.get("event"), str):
            events.append(event)
    return events


class MalformedOutput(AgentError):
    """The agent's output breaks the protocol (a field missing, mistyped or out of range)."""


def job_output(events: list[dict[str, Any]], stderr: str) -> JobResult:
    """A job's events up to the server's closing ``exit`` event, as a JobResult. Whatever a
    board sends, this returns: malformed output fails the job with a line naming the field."""
    try:
        end = next((i for i in range(len(events) - 1, -1, -1) if events[i]["event"] == "exit"), None)
        if end is None:
            raise MalformedOutput("no exit event")
        code = events[end].get("code")
        if isinstance(code, bool) or not isinstance(code, int):
            raise MalformedOutput(f"exit.code must be an integer, got {_shown(code)}")
        return result_from_events(events[:end], code, stderr)
    except MalformedOutput as e:
        return JobResult("failed", f"malformed agent output: {e}")


def result_from_events(events: list[dict[str, Any]], exit_code: int, stderr: str) -> JobResult:
    """Turn the agent's events into a JobResult; a silent or crashed agent is a failure with
    its stderr. MalformedOutput names the first field that breaks the protocol."""
    facts = next((e for e in events if e["event"] == "facts"), {})
    facts = {k: v for k, v in facts.items() if k != "event"}
    for event in events:
        if event["event"] == "error":
            reason = agent_failure(_text(event.get("kind", "AgentError"), 80), _text(event.get("message", ""),
                                                                                       MAX_REASON_CHARS))
            return JobResult("failed", reason, facts=facts)
        if event["event"] == "result":
            details = {k: _detail(event, k) for k in ("runtime", "warmup")}
            details.update({k: _detail(event, k) for k in TELEMETRY_DETAILS + WINDOW_DETAILS + POWER_DETAILS
                            if k in event})
            if isinstance(details.get("power_mode"), dict):
                pm = details["power_mode"]
                facts = dict(facts, power_mode={"name": pm.get("name"), "applied": pm.get("applied")})
            if event.get("task") is not None:
                details["task_output"] = _task_output(event["task"])  # scored, then dropped (harness.tasks)
            return JobResult("ok", metrics=_metrics(event), samples_ns=_samples(event.get("samples_ns")), facts=facts,
                             details=details)
    tail = stderr.strip().splitlines()[-5:]
    return JobResult("failed", f"agent exited with code {exit_code} and no result" + (f": {' | '.join(tail)}" if tail else ""),
                     facts=facts)


def _metrics(event: dict[str, Any]) -> dict[str, Any]:
    """The result event's metrics, each read where ``harness.metrics`` says and checked against its kind."""
    out: dict[str, Any] = {}
    for m in (*METRIC_TABLE, *CANARY_TABLE):
        if m.source is None:
            continue
        value, where = event, "result"
        for step in m.source:
            if value is None:
                break
            if isinstance(step, int):
                if not isinstance(value, list) or len(value) != 2:
                    raise MalformedOutput(f"{where} must be a [low, high] pair or null, got {_shown(value)}")
                value = value[step]
            else:
                if not isinstance(value, dict):
                    raise MalformedOutput(f"{where} must be an object or null, got {_shown(value)}")
                value = value.get(step)
            where += f"[{step}]" if isinstance(step, int) else f".{step}"
        out[m.column] = _checked(value, m.kind, where, m.required)
    return out


def _checked(value: Any, kind: str, where: str, required: bool) -> Any:
    if value is None:
        if required:
            raise MalformedOutput(f"{where} is missing")
        return None
    if kind == "text":
        if not isinstance(value, str):
            raise MalformedOutput(f"{where} must be a string or null, got {_shown(value)}")
        return value[:MAX_REASON_CHARS] or None  # an empty mark is no mark
    if kind == "flag":
        if not isinstance(value, bool):
            raise MalformedOutput(f"{where} must be true, false or null, got {_shown(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedOutput(f"{where} must be a finite number, got {_shown(value)}")
    if kind == "count":
        if not isinstance(value, int) or not 0 <= value < 2**63:
            raise MalformedOutput(f"{where} must be a non-negative integer, got {_shown(value)}")
        return value
    return float(value)


def _samples(value: Any) -> np.ndarray:
    if value is None:
        return np.zeros(0, dtype=np.int64)
    if not isinstance(value, list) or not all(type(v) is int and 0 <= v < 2**63 for v in value):
        raise MalformedOutput("result.samples_ns must be a list of non-negative integers (ns)")
    return np.asarray(value, dtype=np.int64)


def _detail(event: dict[str, Any], key: str) -> Any:
    """A result key kept in the details: an object (or null) where the agent sends one, else a plain value."""
    value = event.get(key)
    if key in OBJECT_DETAILS:
        if value is not None and not isinstance(value, dict):
            raise MalformedOutput(f"result.{key} must be an object or null, got {_shown(value)}")
    elif isinstance(value, (dict, list)):
        raise MalformedOutput(f"result.{key} must be a plain value, got {_shown(value)}")
    return value


def _task_output(value: Any) -> dict[str, Any]:
    """The result's ``task``: the board's predictions on the eval set (devices.agent.tasks.evaluate)."""
    if not isinstance(value, dict):
        raise MalformedOutput(f"result.task must be an object or null, got {_shown(value)}")
    for key, types in (("kind", (str,)), ("arrays", (str,)), ("n", (int,)), ("batch", (int,)), ("raw", (bool,))):
        if isinstance(value.get(key), bool) and bool not in types or not isinstance(value.get(key), types):
            raise MalformedOutput(f"result.task.{key} must be {'/'.join(t.__name__ for t in types)}, "
                                  f"got {_shown(value.get(key))}")
    for key in ("pre_ms", "infer_ms", "post_ms"):
        _checked(value.get(key), "number", f"result.task.{key}", False)
    return dict(value)


def _text(value: Any, limit: int) -> str:
    """An agent's string as part of a one-line reason (whitespace runs and newlines collapsed)."""
    return " ".join((value if isinstance(value, str) else repr(value)).split())[:limit]


def _shown(value: Any) -> str:
    """A bad value in a one-line reason: its type and the start of its text."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
