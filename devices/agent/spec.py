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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Optional, Tuple

from . import PROTOCOL
from .errors import ProtocolError
from .specfields import get, number, options, parse_input, section
from .taskspec import TaskSettings, parse_task
from .telemetry.settings import TelemetrySettings, parse_telemetry

BASE_PROTOCOL = 1  # a spec without a canary: any agent since the first reads it
CANARY_PROTOCOL = 2  # a spec with the interleaved canary: an older agent says "redeploy" instead of "unknown key"
TASK_PROTOCOL = 3  # a spec whose eval set has a task (eval.task)



@dataclass(frozen=True)
class TargetSettings:
    """``measure.target``: stop once the percentile's interval at ``confidence`` lies within
    ``rel_error`` of its estimate on both sides (``earlystop.py``)."""

    percentile: float = 99.0  # in (0, 100)
    rel_error: float = 0.02  # > 0
    confidence: float = 0.95  # in (0, 1)


@dataclass(frozen=True)
class QuietSettings:
    """``measure.quiet``: what counts as a quiet board, and how long to wait for one."""

    max_other_cpu_pct: float = 25.0  # other processes' CPU use, % of all CPUs
    max_load_per_cpu: float = 1.0  # 1-minute load average / CPUs
    min_free_mb: float = 100.0  # MemAvailable
    wait_s: float = 30.0


@dataclass(frozen=True)
class MeasureSettings:
    """How long to warm up and measure; the loop stops when BOTH minimums are met (and,
    with a ``target``, once the percentile is known too)."""

    warmup_iters: int = 10
    warmup_s: float = 1.0
    min_iters: int = 200
    min_s: float = 3.0
    max_iters: Optional[int] = None
    timeout_s: float = 600.0
    threads: Optional[int] = None
    seed: int = 0
    target: Optional[TargetSettings] = None
    quiet: Optional[QuietSettings] = QuietSettings()


@dataclass(frozen=True)
class Artifact:
    """A model file on the board, as a spec names it."""

    path: str
    format: Optional[str] = None  # None: onnx
    sha256: Optional[str] = None
    weights: Optional[str] = None  # weights file of formats that split graph and weights (openvino-ir)


@dataclass(frozen=True)
class ModelInput:
    """The one input a model is fed: its shape (batch first) and dtype."""

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

    @property
    def protocol(self) -> int:
        """The lowest protocol that carries this spec."""
        if self.eval is not None and self.eval.task is not None:
            return TASK_PROTOCOL
        return BASE_PROTOCOL if self.canary is None else CANARY_PROTOCOL


def spec_to_json(spec: JobSpec) -> Dict[str, Any]:
    """The spec as the JSON object ``parse_spec`` reads back (no ``canary`` key without one)."""
    out = asdict(spec)
    out["protocol"] = spec.protocol
    for section_ in [out] + ([out["canary"]] if spec.canary else []):
        section_["input"]["shape"] = list(section_["input"]["shape"])
    if spec.canary is None:
        del out["canary"]
    if out["eval"] is not None and out["eval"]["task"] is None:
        del out["eval"]["task"]  # the JSON of a job without a task stays what older agents read
    return out


_TOP_KEYS = tuple(f.name for f in fields(JobSpec)) + ("protocol",)
_REQUIRED = ("protocol", "job_id", "runtime", "artifact", "input")
_MEASURE_KEYS = tuple(f.name for f in fields(MeasureSettings))
_SECONDS = ("warmup_s", "min_s", "timeout_s")  # the measure keys that take any number


def _parse_artifact(raw: Dict[str, Any], where: str = "") -> Artifact:
    art = section(raw, "artifact", tuple(f.name for f in fields(Artifact)), where)
    at = where + "artifact."
    path = get(art, "path", at, (str,))
    optional = [get(art, k, at, (str,), nullable=True) if k in art else None for k in ("format", "sha256", "weights")]
    return Artifact(path, *(v or None for v in optional))


def _parse_input(raw: Dict[str, Any], where: str = "") -> ModelInput:
    return ModelInput(*parse_input(raw, where))


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


def _subsection(given: Dict[str, Any], key: str, cls: Any) -> Optional[Dict[str, float]]:
    """``measure.<key>``: null (off) or an object of numbers; missing sub-keys take ``cls``'s defaults."""
    value = given[key]
    if value is None:
        return None
    where = "measure.%s." % key
    if not isinstance(value, dict):
        raise ProtocolError("spec key measure.%s must be an object or null, got %r" % (key, value))
    defaults = asdict(cls())
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ProtocolError("unknown spec key %s%s (allowed: %s)" % (where, unknown[0], ", ".join(defaults)))
    return {k: (number(value, k, where) if k in value else float(defaults[k])) for k in defaults}


def _parse_target(given: Dict[str, Any]) -> Optional[TargetSettings]:
    t = _subsection(given, "target", TargetSettings)
    if t is None:
        return None
    if not 0 < t["percentile"] < 100:
        raise ProtocolError("spec key measure.target.percentile must be in (0, 100), got %r" % t["percentile"])
    if not t["rel_error"] > 0:
        raise ProtocolError("spec key measure.target.rel_error must be > 0, got %r" % t["rel_error"])
    if not 0 < t["confidence"] < 1:
        raise ProtocolError("spec key measure.target.confidence must be in (0, 1), got %r" % t["confidence"])
    return TargetSettings(**t)


def _parse_quiet(given: Dict[str, Any]) -> Optional[QuietSettings]:
    q = _subsection(given, "quiet", QuietSettings)
    if q is None:
        return None
    for key, value in q.items():
        if value < 0:
            raise ProtocolError("spec key measure.quiet.%s must be >= 0, got %r" % (key, value))
    return QuietSettings(**q)


def _parse_measure(raw: Dict[str, Any]) -> MeasureSettings:
    """``measure``: every key optional (absent: the default; a whole absent section: all defaults)."""
    if raw.get("measure") is None:
        return MeasureSettings()
    given = section(raw, "measure", _MEASURE_KEYS)
    values: Dict[str, Any] = {}
    for f in fields(MeasureSettings):
        if f.name not in given:
            continue
        if f.name == "target":
            values["target"] = _parse_target(given)
        elif f.name == "quiet":
            values["quiet"] = _parse_quiet(given)
        elif f.name in _SECONDS:
            values[f.name] = number(given, f.name, "measure.")
        else:
            values[f.name] = get(given, f.name, "measure.", (int,), nullable=f.default is None)
    ms = MeasureSettings(**values)
    for key in ("warmup_iters", "warmup_s", "min_iters", "min_s"):
        _positive(getattr(ms, key), key)
    for key in ("max_iters", "timeout_s", "threads"):
        _positive(getattr(ms, key), key, allow_zero=False)
    if not 0 <= ms.seed < 2**32:
        raise ProtocolError("spec key measure.seed must be in [0, 2**32), got %r" % ms.seed)
    return ms


def _positive(value: Optional[float], name: str, allow_zero: bool = True) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ProtocolError("spec key measure.%s must be %s, got %r" % (name, ">= 0" if allow_zero else "> 0", value))


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
    return JobSpec(
        job_id=get(raw, "job_id", "", (str,)),
        runtime=get(raw, "runtime", "", (str,)),
        artifact=_parse_artifact(raw),
        input=_parse_input(raw),
        eval=_parse_eval(raw),
        measure=_parse_measure(raw),
        runtime_options=options(raw),
        telemetry=parse_telemetry(raw.get("telemetry")),
        canary=_parse_canary(raw),
    )
