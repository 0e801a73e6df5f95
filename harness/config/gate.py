"""The release policy: how much worse each metric may get, per configuration.

    gate:
      latency_p50: {max_increase: 5%}
      latency_p99: {max_increase: 10%}
      energy_per_inference: {max_increase: 5%}
      peak_memory: {max_increase: 10%}
      accuracy: {max_drop: 0.5}          # points of the task metric (or top-1); min_relative: 0.99 (MLPerf)
      degraded: fail                     # a result past the suite's fidelity limit fails the gate
      fdr: 0.05                          # false-discovery rate across every comparison of a gate
      overrides:                         # first match wins; fnmatch patterns
        - match: {device: "pi-*"}
          latency_p99: {max_increase: 20%}

It lives in the suite (``gate:``) or its own file (``harness gate --policy FILE``).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from harness.config.yamlio import Strict, load_yaml, validate

_PERCENT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")


def _fraction(value: Any) -> Any:
    """``5%`` -> 0.05; a bare number is already a fraction (0.05)."""
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if not m:
            raise ValueError(f"expected a percentage like '5%', got {value!r}")
        return float(m.group(1)) / 100
    return value


Fraction = Annotated[float, BeforeValidator(_fraction), Field(ge=0, le=10)]


class Increase(Strict):
    """How much worse (larger) a metric may get: ``{max_increase: 5%}``."""

    max_increase: Fraction = Field(
        ..., description="Largest allowed relative increase: a percentage ('5%') or a fraction (0.05)."
    )


class Drop(Strict):
    """How much the quality metric (a model's task metric: mAP, mIoU, top-1...; else top-1
    accuracy) may drop: ``{max_drop: 0.5}`` (points), ``{min_relative: 0.99}`` (MLPerf's
    closed division: at least 99% of the reference), or both (both must hold)."""

    max_drop: float | None = Field(None, ge=0, description="Largest allowed drop in percentage points.")
    min_relative: float | None = Field(
        None, gt=0, le=1, description="The candidate keeps at least this fraction of the reference's value (0.99).")
    reference: Literal["baseline", "fp32"] = Field(
        "baseline", description="What the candidate is compared with: the baseline runs' value of the same "
        "configuration, or (fp32, MLPerf's reference) the candidate run's own fp32 variant of the model on the same "
        "device and runtime, judged without a baseline.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _some_limit(self) -> Drop:
        if self.max_drop is None and self.min_relative is None:
            raise ValueError("give max_drop (points), min_relative (a fraction of the reference) or both")
        return self

    def allows(self, value: float, reference: float) -> bool:
        """Whether ``value`` (a fraction, like accuracy) is within this rule of ``reference``."""
        within_points = self.max_drop is None or (reference - value) * 100 <= self.max_drop + 1e-9
        return within_points and (self.min_relative is None or value >= self.min_relative * reference - 1e-12)

    def describe(self) -> str:
        """The rule as people read it: ``0.5 points``, ``99% of the reference``, or both."""
        parts = ([f"{self.max_drop:g} points"] if self.max_drop is not None else []) + (
            [f"{self.min_relative:.4g}x the reference"] if self.min_relative is not None else [])
        return " and ".join(parts)


class Rules(Strict):
    """Thresholds per metric; a metric left out is not gated."""

    latency_p50: Increase | None = Field(None, description="Median latency (from the per-iteration samples).")
    latency_p90: Increase | None = Field(None, description="90th-percentile latency.")
    latency_p99: Increase | None = Field(None, description="99th-percentile latency.")
    energy_per_inference: Increase | None = Field(
        None, description="Energy per inference (boards without a power source are not gated on it)."
    )
    peak_memory: Increase | None = Field(None, description="Peak resident memory of the job's process.")
    accuracy: Drop | None = Field(
        None, description="The quality metric on the eval set: a model's task metric where it has a task (mAP@[.5:.95], "
        "mIoU, top-1, a custom metric), else top-1 accuracy.",
    )  # fmt: skip
    degraded: Literal["fail", "ignore"] | None = Field(
        None, description="'fail': a candidate result marked degraded (its outputs past the suite's fidelity limit "
        "against the reference model; see the suite's 'fidelity') is a regression, with or without a baseline; "
        "'ignore' (for an override): not gated.",
    )  # fmt: skip


class Match(Strict):
    """Which configurations an override applies to: fnmatch patterns, all of which must match."""

    model: str = Field("*", description="Pattern on the model's name.")
    variant: str = Field("*", description="Pattern on the variant (its recipe chain).")
    device: str = Field("*", description="Pattern on the device or pool name.")
    runtime: str = Field("*", description="Pattern on the runtime.")

    def matches(self, config: dict[str, str]) -> bool:
        return all(fnmatch.fnmatchcase(config[k], getattr(self, k)) for k in ("model", "variant", "device", "runtime"))


class Override(Rules):
    """Thresholds for some configurations: the first override whose ``match`` fits replaces the
    policy's thresholds it names; the others stay."""

    match: Match = Field(..., description="The configurations this override applies to.")


class Policy(Rules):
    """The release policy of ``harness gate`` (docs/gate.md): a suite's ``gate:``, or a file of its
    own passed with ``--policy FILE`` (the same keys at its top level, or under ``gate:``)."""

    fdr: float = Field(0.05, gt=0, lt=1, description="False-discovery rate across all comparisons of one gate.")
    overrides: tuple[Override, ...] = Field(
        (), description="Per-configuration thresholds; the first whose match fits applies."
    )

    def rules_for(self, config: dict[str, str]) -> dict[str, Increase | Drop | str]:
        """The thresholds that apply to one (model, variant, device, runtime)."""
        rules = {k: v for k, v in self.model_dump().items() if k in Rules.model_fields and v is not None}
        for o in self.overrides:
            if o.match.matches(config):
                rules.update({k: v for k, v in o.model_dump().items() if k in Rules.model_fields and v is not None})
                break
        return {k: (v if k == "degraded" else Drop(**v) if k == "accuracy" else Increase(**v)) for k, v in rules.items()
                if v != "ignore"}


DEFAULT = Policy(
    latency_p50=Increase(max_increase=0.05), latency_p99=Increase(max_increase=0.10),
    energy_per_inference=Increase(max_increase=0.05), peak_memory=Increase(max_increase=0.10),
    accuracy=Drop(max_drop=0.5),
)  # fmt: skip


def load_policy(path: Path) -> Policy:
    """A policy file: the ``gate:`` mapping itself, or a suite-like file holding one."""
    data = load_yaml(path)
    if isinstance(data, dict) and "gate" in data:
        data = data["gate"]
    return validate(Policy, data, path)
