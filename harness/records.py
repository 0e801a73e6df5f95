"""Records passed between planner, coordinator and store.

Plain dataclasses, picklable (they cross Ray process boundaries), JSON-friendly fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from devices.agent.powerspec import parse_power_mode, power_mode_to_json
from devices.agent.spec import MeasureSettings, PowerMode, QuietSettings, TargetSettings
from harness.errors import one_line
from harness.hashing import canonical_json
from devices.agent.measurespec import LATER_KEYS
from devices.agent.metrics import METRIC_TABLE

_WIRE = asdict(MeasureSettings())  # the wire's defaults: a later key equal to its default stays out of a job's key

@dataclass(frozen=True)
class JobSettings:
    """A job's settings: what its board is sent (the wire's ``measure`` and
    ``runtime_options``) and what the coordinator does with it (how many windows, in which
    order, where a board canary's windows go, the interleaved canary's block)."""

    measure: MeasureSettings = MeasureSettings()
    runtime_options: dict[str, Any] = field(default_factory=dict)
    repeats: int = 1  # timed windows, each in a fresh agent process
    order: str = "sequential"  # how a board's jobs' repeats are ordered (``units.order_units``)
    canary: str | None = None  # a board canary job's place: "first", "between" or "last"
    between: str | None = None  # the target over whose units a "between" canary's windows are spread
    canary_block_s: float | None = None  # the interleaved canary's block (s), when the plan put it in this job
    power_mode: PowerMode | None = None  # the board state the job is measured in (the suite's power_modes axis)
    # The suite's ``axes`` values this job was planned at, sorted by axis name (``harness.axes``):
    # threads and inflight are in ``measure`` too; batch and resolution shape the artifact and its input.
    axes: tuple[tuple[str, Any], ...] = ()

    def identity(self) -> dict[str, Any]:
        """The settings as stored (``jobs.settings_json``) and hashed into ``Job.key``; this JSON
        shape is what earlier stores hold, so a resumed run finds its jobs again."""
        measure = {k: v for k, v in asdict(self.measure).items() if k not in LATER_KEYS or v != _WIRE[k]}
        measure.update(threads="auto" if self.measure.threads is None else self.measure.threads, repeats=self.repeats,
                       order=self.order)  # keys added later enter only when set: a default job's key stays as it was
        out: dict[str, Any] = {"measure": measure, "runtime_options": dict(self.runtime_options)}
        for key in ("canary", "between", "canary_block_s"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.power_mode is not None:  # only when set: the keys of jobs without one stay those of earlier stores
            out["power_mode"] = power_mode_to_json(self.power_mode)
        if self.axes:  # so do the axes
            out["axes"] = {name: list(v) if isinstance(v, tuple) else v for name, v in self.axes}
        return out

    @property
    def point(self) -> str:
        """The operating point as people read it (``point_label``); "" for a default job."""
        return point_label(self.identity())

    def axis(self, name: str) -> Any:
        """The value of axis ``name`` this job was planned at, or None."""
        return dict(self.axes).get(name)

    @classmethod
    def from_identity(cls, stored: dict[str, Any]) -> JobSettings:
        """Settings read back from a store (keys a store does not hold take their defaults)."""
        m = dict(stored.get("measure") or {})
        repeats, order = int(m.pop("repeats", 1)), str(m.pop("order", "sequential"))
        if m.get("threads") == "auto":
            m["threads"] = None
        for key, kind in (("target", TargetSettings), ("quiet", QuietSettings)):
            if isinstance(m.get(key), dict):
                m[key] = kind(**m[key])
        known = {f.name for f in fields(MeasureSettings)}
        return cls(MeasureSettings(**{k: v for k, v in m.items() if k in known}), dict(stored.get("runtime_options") or {}),
                   repeats, order, stored.get("canary"), stored.get("between"), stored.get("canary_block_s"),
                   parse_power_mode({"power_mode": stored.get("power_mode")}),
                   tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (stored.get("axes") or {}).items())))


def point_label(identity: dict[str, Any]) -> str:
    """A job's operating point from its stored settings (``JobSettings.identity``): its scenario
    unless single-stream, its power mode's name, then each axis value (``offline eco batch=4 inflight=2``,
    resolution as ``160x160``); "" for a default job, so results of earlier stores match
    today's default ones. The gate, the history and the report tell operating points apart by it."""
    measure = identity.get("measure") or {}
    parts = [str(measure["scenario"])] if measure.get("scenario") not in (None, _WIRE["scenario"]) else []
    if isinstance(identity.get("power_mode"), dict) and identity["power_mode"].get("name"):
        parts.append(str(identity["power_mode"]["name"]))
    for name, value in sorted((identity.get("axes") or {}).items()):
        shown = "x".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{name}={shown}")
    return " ".join(parts)


@dataclass(frozen=True)
class Job:
    """One (model, variant, device, runtime) measurement with its settings."""

    model: str
    variant: str
    device: str
    runtime: str
    settings: JobSettings = field(default_factory=JobSettings, hash=False, compare=False)

    @property
    def key(self) -> str:
        """Stable identity inside a run: resume matches stored jobs on it."""
        ident = [self.model, self.variant, self.device, self.runtime, self.settings.identity()]
        return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]

    def label(self) -> str:
        point = self.settings.point  # the power mode's name, the scenario, the axes' values
        return f"{self.model} [{self.variant}] on {self.device}/{self.runtime}" + (f" @ {point}" if point else "")


# Metric columns of the results table (defined in ``harness.metrics``); those holding text
# (``noisy`` and ``unstable`` are the reasons for the mark, NULL: no mark).
# Metrics kept in the details JSON (``Metric.details``) have no column.
METRICS = tuple(m.column for m in METRIC_TABLE if not m.details)
TEXT_METRICS = tuple(m.column for m in METRIC_TABLE if m.kind == "text" and not m.details)

# What the store keeps about each built variant (its ``variants`` table; results join it).
# ``precision`` there is the weights' precision; a result's ``precision`` is what the runtime ran.
# Fidelity against the reference (``harness.variants.quality``): ``cosine``, ``snr_db`` and
# ``max_abs_err`` are the worst output's, ``agreement`` is top-1 agreement on class-score outputs
# only, ``fidelity_inputs`` says what was fed ("eval", "calibration" or "synthetic"); the
# per-output figures are the variants table's ``fidelity_json``.
VARIANT_COLUMNS = (
    "model", "chain", "sha256", "size_bytes", "params", "macs", "sparsity", "precision", "opset",
    "build_s", "host_accuracy", "agreement", "cosine", "snr_db", "max_abs_err", "fidelity_inputs", "synthetic",
)  # fmt: skip


@dataclass
class Repeat:
    """One timed window of a job in its own agent process (``measure.repeats``)."""

    index: int
    board: str | None
    summary: dict[str, Any]  # the window's metrics and marks (JSON-friendly)
    samples_ns: np.ndarray | None = None
    started: float | None = None
    finished: float | None = None


# A failure's reason, as the terminal, the store's error column and the report show it.
MAX_REASON_CHARS = 300


@dataclass
class JobResult:
    """What became of a job: measured (``ok``) or ``failed`` with the reason."""

    status: str
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    samples_ns: np.ndarray | None = None
    variant: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    repeats: list[Repeat] = field(default_factory=list)  # per-repeat results when the job ran several windows

    def __post_init__(self) -> None:
        # A failure reads as one line wherever it is shown; a longer text is kept whole in the details.
        if self.error is not None and one_line(self.error, MAX_REASON_CHARS) != self.error:
            self.details.setdefault("error_full", self.error)
            self.error = one_line(self.error, MAX_REASON_CHARS)

    @classmethod
    def failed(cls, reason: str, **details: Any) -> JobResult:
        return cls(status="failed", error=reason, details=details)


