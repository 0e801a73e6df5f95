"""The job spec the coordinator writes: parsed strictly, every fault a ProtocolError.

Unknown keys are rejected (a typo'd key must not pass silently, unlike asv's config), and
keys with defaults may be left out. Protocol is checked first, so a newer coordinator gets
"upgrade the agent", not a confusing complaint about a key it added.

Measurement defaults, and where they come from:

- ``warmup_iters`` 10: optimum-benchmark's warm-up runs.
- ``warmup_s`` 1.0: longer than trtexec's 200 ms, so CPU frequency and caches settle.
- ``min_iters`` 200 / ``min_s`` 3.0: trtexec's >= 3 s window; 200 iterations so p99 has a
  few samples beyond it (MLPerf LoadGen wants >= 662 for a p99 it trusts).
- ``timeout_s`` 600: a job that has not finished in 10 minutes is stuck.
- ``target`` None: the window stops on ``min_iters``/``min_s`` alone; an object
  ``{percentile, rel_error, confidence}`` (defaults 99, 0.02, 0.95) keeps it going until the
  percentile's confidence interval is that tight (``earlystop.py``).
- ``quiet`` None: the board's state is not read; an object ``{max_other_cpu_pct: 25,
  max_load_per_cpu: 1.0, min_free_mb: 100, wait_s: 30}`` reads it before the window, waits
  for a quiet board and marks the result ``noisy`` otherwise (``boardstate.py``). A spec
  without the key (an older coordinator) gets today's behaviour: neither is done.

``canary`` (protocol 2, optional): a fixed model measured in the job's own process, in
blocks of ``block_s`` alternating with the job's during the timed window
(``interleave.py``); its own ``runtime``, ``artifact``, ``input`` and ``runtime_options``
keys read like the job's. Null or absent: no canary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from . import PROTOCOL
from .errors import ProtocolError
from .specfields import get, number, options, parse_input, section
from .telemetry.settings import TelemetrySettings, parse_telemetry

_MEASURE_DEFAULTS: Dict[str, Any] = {
    "warmup_iters": 10,
    "warmup_s": 1.0,
    "min_iters": 200,
    "min_s": 3.0,
    "max_iters": None,
    "timeout_s": 600.0,
    "threads": None,
    "seed": 0,
    "target": None,
    "quiet": None,
}
# Sub-keys of measure.target and measure.quiet with their defaults (missing sub-keys take these).
_TARGET_DEFAULTS: Dict[str, float] = {"percentile": 99.0, "rel_error": 0.02, "confidence": 0.95}
_QUIET_DEFAULTS: Dict[str, float] = {"max_other_cpu_pct": 25.0, "max_load_per_cpu": 1.0, "min_free_mb": 100.0,
                                     "wait_s": 30.0}
_TOP_KEYS = ("protocol", "job_id", "runtime", "artifact", "input", "eval", "measure", "runtime_options", "telemetry",
             "canary")
_REQUIRED = ("protocol", "job_id", "runtime", "artifact", "input")
_CANARY_KEYS = ("runtime", "artifact", "input", "runtime_options", "block_s")


@dataclass(frozen=True)
class TargetSettings:
    """``measure.target``: stop once the percentile's interval at ``confidence`` lies within
    ``rel_error`` of its estimate on both sides (``earlystop.py``)."""

    percentile: float  # in (0, 100)
    rel_error: float  # > 0
    confidence: float  # in (0, 1)


@dataclass(frozen=True)
class QuietSettings:
    """``measure.quiet``: what counts as a quiet board, and how long to wait for one."""

    max_other_cpu_pct: float  # other processes' CPU use, % of all CPUs
    max_load_per_cpu: float  # 1-minute load average / CPUs
    min_free_mb: float  # MemAvailable
    wait_s: float


@dataclass(frozen=True)
class MeasureSettings:
    """How long to warm up and measure; the loop stops when BOTH minimums are met (and,
    with a ``target``, once the percentile is known too)."""

    warmup_iters: int
    warmup_s: float
    min_iters: int
    min_s: float
    max_iters: Optional[int]
    timeout_s: float
    threads: Optional[int]
    seed: int
    target: Optional[TargetSettings] = None
    quiet: Optional[QuietSettings] = None


@dataclass(frozen=True)
class Artifact:
    """A model file on the board, as a spec names it."""

    path: str
    format: Optional[str]
    sha256: Optional[str]
    weights: Optional[str]  # weights file of formats that split graph and weights (openvino-ir)


@dataclass(frozen=True)
class CanarySpec:
    """``canary``: the fixed model interleaved with the job, and the length of one block."""

    runtime: str
    artifact: Artifact
    input_shape: Tuple[int, ...]
    input_dtype: str
    runtime_options: Dict[str, Any]
    block_s: float


@dataclass(frozen=True)
class JobSpec:
    """One measurement job: one artifact, one runtime, one setting."""

    job_id: str
    runtime: str
    artifact_path: str
    artifact_format: Optional[str]
    artifact_sha256: Optional[str]
    artifact_weights: Optional[str]  # weights file of formats that split graph and weights (openvino-ir)
    input_shape: Tuple[int, ...]
    input_dtype: str
    eval_path: Optional[str]
    eval_max_samples: Optional[int]
    measure: MeasureSettings
    runtime_options: Dict[str, Any]
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)  # power, cooldown (optional key)
    canary: Optional[CanarySpec] = None


def _parse_artifact(raw: Dict[str, Any], where: str = "") -> Artifact:
    art = section(raw, "artifact", ("path", "format", "sha256", "weights"), where)
    at = where + "artifact."
    path = get(art, "path", at, (str,))
    optional = [get(art, k, at, (str,), nullable=True) if k in art else None for k in ("format", "sha256", "weights")]
    return Artifact(path, *(v or None for v in optional))


def _parse_canary(raw: Dict[str, Any]) -> Optional[CanarySpec]:
    if raw.get("canary") is None:
        return None
    c = section(raw, "canary", _CANARY_KEYS)
    block_s = number(c, "block_s", "canary.")
    if not block_s > 0:
        raise ProtocolError("spec key canary.block_s must be > 0, got %r" % block_s)
    shape, dtype = parse_input(c, "canary.")
    return CanarySpec(get(c, "runtime", "canary.", (str,)), _parse_artifact(c, "canary."), shape, dtype,
                      options(c, "canary."), block_s)


def _positive(value: Optional[float], name: str, allow_zero: bool = True) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ProtocolError("spec key measure.%s must be %s, got %r" % (name, ">= 0" if allow_zero else "> 0", value))


def _subsection(given: Dict[str, Any], key: str, defaults: Dict[str, float]) -> Optional[Dict[str, float]]:
    """``measure.<key>``: null (off) or an object of numbers; missing sub-keys take defaults."""
    value = given.get(key)
    if value is None:
        return None
    where = "measure.%s." % key
    if not isinstance(value, dict):
        raise ProtocolError("spec key measure.%s must be an object or null, got %r" % (key, value))
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise ProtocolError("unknown spec key %s%s (allowed: %s)" % (where, unknown[0], ", ".join(defaults)))
    return {k: (number(value, k, where) if k in value else float(defaults[k])) for k in defaults}


def _parse_target(given: Dict[str, Any]) -> Optional[TargetSettings]:
    t = _subsection(given, "target", _TARGET_DEFAULTS)
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
    q = _subsection(given, "quiet", _QUIET_DEFAULTS)
    if q is None:
        return None
    for key, value in q.items():
        if value < 0:
            raise ProtocolError("spec key measure.quiet.%s must be >= 0, got %r" % (key, value))
    return QuietSettings(**q)


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
    job_id = get(raw, "job_id", "", (str,))
    runtime = get(raw, "runtime", "", (str,))

    art = _parse_artifact(raw)
    shape, dtype = parse_input(raw)

    eval_path: Optional[str] = None
    eval_max: Optional[int] = None
    if raw.get("eval") is not None:
        ev = section(raw, "eval", ("path", "max_samples"))
        eval_path = get(ev, "path", "eval.", (str,))
        eval_max = get(ev, "max_samples", "eval.", (int,), nullable=True) if "max_samples" in ev else None
        if eval_max is not None and eval_max < 1:
            raise ProtocolError("spec key eval.max_samples must be >= 1 or null, got %r" % eval_max)

    ms = dict(_MEASURE_DEFAULTS)
    target: Optional[TargetSettings] = None
    quiet: Optional[QuietSettings] = None
    if raw.get("measure") is not None:
        given = section(raw, "measure", tuple(_MEASURE_DEFAULTS))
        target, quiet = _parse_target(given), _parse_quiet(given)
        for key in given:
            if key in ("target", "quiet"):
                continue
            nullable = _MEASURE_DEFAULTS[key] is None
            types = (int, float) if key in ("warmup_s", "min_s", "timeout_s") else (int,)
            ms[key] = get(given, key, "measure.", types, nullable=nullable)
    for key in ("warmup_iters", "warmup_s", "min_iters", "min_s"):
        _positive(ms[key], key)
    for key in ("max_iters", "timeout_s", "threads"):
        _positive(ms[key], key, allow_zero=False)

    return JobSpec(
        job_id=job_id,
        runtime=runtime,
        artifact_path=art.path,
        artifact_format=art.format,
        artifact_sha256=art.sha256,
        artifact_weights=art.weights,
        input_shape=shape,
        input_dtype=dtype,
        eval_path=eval_path,
        eval_max_samples=eval_max,
        measure=MeasureSettings(
            warmup_iters=int(ms["warmup_iters"]),
            warmup_s=float(ms["warmup_s"]),
            min_iters=int(ms["min_iters"]),
            min_s=float(ms["min_s"]),
            max_iters=ms["max_iters"],
            timeout_s=float(ms["timeout_s"]),
            threads=ms["threads"],
            seed=int(ms["seed"]),
            target=target,
            quiet=quiet,
        ),
        runtime_options=options(raw),
        telemetry=parse_telemetry(raw.get("telemetry")),
        canary=_parse_canary(raw),
    )
