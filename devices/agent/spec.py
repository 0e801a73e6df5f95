"""The job spec: the one definition of a job on the wire, built by the coordinator, parsed here.

Typed records with their defaults (the suite's config models take theirs from these),
``spec_to_json`` to write one and ``parse_spec`` to read one back strictly, every fault a
ProtocolError naming the key. Unknown keys are rejected (a typo'd key must not pass
silently, unlike asv's config), and keys with defaults may be left out. Protocol is
checked first, so a newer coordinator gets "upgrade the agent", not a confusing complaint
about a key it added.

Measurement defaults, and where they come from:

- ``warmup_iters`` 10: optimum-benchmark's warm-up runs.
- ``warmup_s`` 1.0: longer than trtexec's 200 ms, so CPU frequency and caches settle.
- ``min_iters`` 200 / ``min_s`` 3.0: trtexec's >= 3 s window; 200 iterations so p99 has a
  few samples beyond it (MLPerf LoadGen wants >= 662 for a p99 it trusts).
- ``timeout_s`` 600: a job that has not finished in 10 minutes is stuck.
- ``threads`` None: the runtime's own default (``auto`` in a suite).
- ``target`` None: the window stops on ``min_iters``/``min_s`` alone; an object
  ``{percentile, rel_error, confidence}`` keeps it going until the percentile's confidence
  interval is that tight (``earlystop.py``).
- ``quiet`` on: the board's state is read before the window; the agent waits for a quiet
  board and marks the result ``noisy`` otherwise (``boardstate.py``). Null: not read.

``canary`` (protocol 2, optional): a fixed model measured in the job's own process, in
blocks of ``block_s`` alternating with the job's during the timed window
(``canary.py``); its ``runtime``, ``artifact``, ``input`` and ``runtime_options`` read
like the job's. Null or absent: no canary.

``eval.task`` (protocol 3, optional): what the eval set measures (``TaskSettings``): the
board runs the eval set with the timed runtime instance, decodes the outputs (``tasks/``)
and sends back compact predictions; the coordinator computes the task metric. Null or
absent: top-1 accuracy over the first output, as before.

``inputs`` (protocol 4, optional): every input of a model with several, in the model's
order, each ``{name, shape, dtype}`` (shape batch first, every dimension resolved); the
first is also ``input``, which one-input jobs send alone, so their spec is what older
agents read. The agent binds every input for the timed loop (``measure.py``). Null or
absent: the model has one input, ``input``. A ``bool`` dtype is protocol 4 too.

``measure.scenario`` and the keys of the operating point (protocol 5, ``measurespec.py``,
``scenarios/``): left out at their defaults, so a single-stream job's spec is unchanged.

``power_mode`` (optional, ``powerspec.py``): the board state the job is measured in,
applied before the job and restored after it (``power/``). Null or absent: as the board is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Optional, Tuple

from . import PROTOCOL
from .errors import ProtocolError
from .measurespec import MeasureSettings, QuietSettings, TargetSettings, measure_protocol, measure_to_json, parse_measure
from .powerspec import CpufreqMode, PowerMode, parse_power_mode
from .specfields import get, number, options, parse_input, parse_inputs, section
from .taskspec import TaskSettings, parse_task
from .telemetry.settings import TelemetrySettings, parse_telemetry

BASE_PROTOCOL = 1  # a spec without a canary: any agent since the first reads it
CANARY_PROTOCOL = 2  # a spec with the interleaved canary: an older agent says "redeploy" instead of "unknown key"
TASK_PROTOCOL = 3  # a spec whose eval set has a task (eval.task)
INPUTS_PROTOCOL = 4  # a spec naming every input of a multi-input model (inputs), or a bool input
_NEW_DTYPES = ("bool",)  # input dtypes an agent before INPUTS_PROTOCOL refuses

__all__ = ["Artifact", "CanarySpec", "CpufreqMode", "EvalSet", "JobSpec", "MeasureSettings", "ModelInput",
           "NamedInput", "PowerMode", "QuietSettings", "TargetSettings", "TaskSettings", "parse_spec", "spec_to_json"]


@dataclass(frozen=True)
class Artifact:
    """A model file on the board, as a spec names it."""

    path: str
    format: Optional[str] = None  # None: onnx
    sha256: Optional[str] = None
    weights: Optional[str] = None  # weights file of formats that split graph and weights (openvino-ir)


@dataclass(frozen=True)
class ModelInput:
    """A model's input (a multi-input model's first, ``inputs`` has them all): its shape (batch first) and dtype."""

    shape: Tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class NamedInput:
    """One of a multi-input model's inputs: its name in the model, shape (batch first) and dtype."""

    name: str
    shape: Tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class EvalSet:
    """An npz on the board: ``x`` and ``y`` arrays for accuracy; with a ``task``, ``x`` and
    what the task reads (``tasks/``)."""

    path: str
    max_samples: Optional[int] = None
    task: Optional[TaskSettings] = None


@dataclass(frozen=True)
class CanarySpec:
    """``canary``: the fixed model interleaved with the job, and the length of one block."""

    runtime: str
    artifact: Artifact
    input: ModelInput
    runtime_options: Dict[str, Any]
    block_s: float


@dataclass(frozen=True)
class JobSpec:
    """One measurement job: one artifact, one runtime, one setting."""

    job_id: str
    runtime: str
    artifact: Artifact
    input: ModelInput
    eval: Optional[EvalSet] = None
    measure: MeasureSettings = MeasureSettings()
    runtime_options: Dict[str, Any] = field(default_factory=dict)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)  # power, cooldown
    canary: Optional[CanarySpec] = None
    inputs: Tuple[NamedInput, ...] = ()  # every input, the first being ``input``; () for one-input models
    power_mode: Optional[PowerMode] = None  # the board state to measure in; None: as the board is

    @property
    def protocol(self) -> int:
        """The lowest protocol that carries this spec."""
        return max(self._inputs_protocol(), measure_protocol(self.measure))

    def _inputs_protocol(self) -> int:
        dtypes = [self.input.dtype] + [i.dtype for i in self.inputs]
        if self.canary is not None:
            dtypes.append(self.canary.input.dtype)
        if self.inputs or any(d in _NEW_DTYPES for d in dtypes):
            return INPUTS_PROTOCOL
        if self.eval is not None and self.eval.task is not None:
            return TASK_PROTOCOL
        return BASE_PROTOCOL if self.canary is None else CANARY_PROTOCOL


def spec_to_json(spec: JobSpec) -> Dict[str, Any]:
    """The spec as the JSON object ``parse_spec`` reads back (no ``canary`` key without one)."""
    out = asdict(spec)
    out["protocol"] = spec.protocol
    out["measure"] = measure_to_json(spec.measure)  # a single-stream job's measure is what older agents read
    for section_ in [out] + ([out["canary"]] if spec.canary else []):
        section_["input"]["shape"] = list(section_["input"]["shape"])
    if spec.canary is None:
        del out["canary"]
    if out["eval"] is not None and out["eval"]["task"] is None:
        del out["eval"]["task"]  # the JSON of a job without a task stays what older agents read
    if spec.inputs:
        out["inputs"] = [dict(i, shape=list(i["shape"])) for i in out["inputs"]]
    else:
        del out["inputs"]  # a one-input job's JSON stays what older agents read
    if spec.power_mode is None:
        del out["power_mode"]  # so does a job's without a power mode
    return out


_TOP_KEYS = tuple(f.name for f in fields(JobSpec)) + ("protocol",)
_REQUIRED = ("protocol", "job_id", "runtime", "artifact", "input")


def _parse_artifact(raw: Dict[str, Any], where: str = "") -> Artifact:
    art = section(raw, "artifact", tuple(f.name for f in fields(Artifact)), where)
    at = where + "artifact."
    path = get(art, "path", at, (str,))
    optional = [get(art, k, at, (str,), nullable=True) if k in art else None for k in ("format", "sha256", "weights")]
    return Artifact(path, *(v or None for v in optional))


def _parse_input(raw: Dict[str, Any], where: str = "") -> ModelInput:
    return ModelInput(*parse_input(raw, where))


def _parse_inputs(raw: Dict[str, Any], first: ModelInput) -> Tuple[NamedInput, ...]:
    """``inputs``, whose first entry must be ``input``."""
    inputs = tuple(NamedInput(*i) for i in parse_inputs(raw))
    if inputs and (inputs[0].shape, inputs[0].dtype) != (first.shape, first.dtype):
        raise ProtocolError("spec key inputs[0] (%s %s) must be the spec's input (%s %s)" % (
            list(inputs[0].shape), inputs[0].dtype, list(first.shape), first.dtype))
    return inputs


def _parse_canary(raw: Dict[str, Any]) -> Optional[CanarySpec]:
    if raw.get("canary") is None:
        return None
    c = section(raw, "canary", tuple(f.name for f in fields(CanarySpec)))
    block_s = number(c, "block_s", "canary.")
    if not block_s > 0:
        raise ProtocolError("spec key canary.block_s must be > 0, got %r" % block_s)
    return CanarySpec(get(c, "runtime", "canary.", (str,)), _parse_artifact(c, "canary."), _parse_input(c, "canary."),
                      options(c, "canary."), block_s)


def _parse_eval(raw: Dict[str, Any]) -> Optional[EvalSet]:
    if raw.get("eval") is None:
        return None
    ev = section(raw, "eval", ("path", "max_samples", "task"))
    eval_max = get(ev, "max_samples", "eval.", (int,), nullable=True) if "max_samples" in ev else None
    if eval_max is not None and eval_max < 1:
        raise ProtocolError("spec key eval.max_samples must be >= 1 or null, got %r" % eval_max)
    return EvalSet(get(ev, "path", "eval.", (str,)), eval_max, parse_task(ev))


def parse_spec(raw: Dict[str, Any]) -> JobSpec:
    """Validate a raw spec dict into a JobSpec; any fault is a ProtocolError saying which key."""
    protocol = get(raw, "protocol", "", (int,))
    if protocol > PROTOCOL or protocol < 1:
        raise ProtocolError(
            "spec protocol %d is not supported by agent protocol %d; rebuild and redeploy the agent"
            % (protocol, PROTOCOL)
        )
    unknown = sorted(set(raw) - set(_TOP_KEYS))
    if unknown:
        raise ProtocolError("unknown spec key %r (allowed: %s)" % (unknown[0], ", ".join(_TOP_KEYS)))
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ProtocolError("spec is missing key %s" % missing[0])
    first = _parse_input(raw)
    return JobSpec(
        job_id=get(raw, "job_id", "", (str,)),
        runtime=get(raw, "runtime", "", (str,)),
        artifact=_parse_artifact(raw),
        input=first,
        eval=_parse_eval(raw),
        measure=parse_measure(raw),
        runtime_options=options(raw),
        telemetry=parse_telemetry(raw.get("telemetry")),
        canary=_parse_canary(raw),
        inputs=_parse_inputs(raw, first),
        power_mode=parse_power_mode(raw),
    )
