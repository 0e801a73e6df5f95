"""The release policy: how much worse each metric may get, per configuration.

    gate:
      latency_p50: {max_increase: 5%}
      latency_p99: {max_increase: 10%}
      energy_per_inference: {max_increase: 5%}
      peak_memory: {max_increase: 10%}
      accuracy: {max_drop: 0.5}          # points
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
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.config.yamlio import load_yaml, validate

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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Increase(Strict):
    max_increase: Fraction = Field(..., description="Largest allowed relative increase, e.g. 5%.")


class Drop(Strict):
    max_drop: float = Field(..., ge=0, description="Largest allowed drop in percentage points.")


class Rules(Strict):
    """Thresholds per metric; a metric left out is not gated."""

    latency_p50: Increase | None = None
    latency_p90: Increase | None = None
    latency_p99: Increase | None = None
    energy_per_inference: Increase | None = None
    peak_memory: Increase | None = None
    accuracy: Drop | None = None


class Match(Strict):
    model: str = "*"
    variant: str = "*"
    device: str = "*"
    runtime: str = "*"

    def matches(self, config: dict[str, str]) -> bool:
        return all(fnmatch.fnmatchcase(config[k], getattr(self, k)) for k in ("model", "variant", "device", "runtime"))


class Override(Rules):
    match: Match


class Policy(Rules):
    fdr: float = Field(0.05, gt=0, lt=1, description="False-discovery rate across all comparisons of one gate.")
    overrides: tuple[Override, ...] = ()

    def rules_for(self, config: dict[str, str]) -> dict[str, Increase | Drop]:
        """The thresholds that apply to one (model, variant, device, runtime)."""
        rules = {k: v for k, v in self.model_dump().items() if k in Rules.model_fields and v is not None}
        for o in self.overrides:
            if o.match.matches(config):
                rules.update({k: v for k, v in o.model_dump().items() if k in Rules.model_fields and v is not None})
                break
        return {k: (Drop(**v) if k == "accuracy" else Increase(**v)) for k, v in rules.items()}


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
