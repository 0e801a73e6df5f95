"""Records passed between planner, coordinator and store.

Plain dataclasses, picklable (they cross Ray process boundaries), JSON-friendly fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.hashing import canonical_json

# Job setting the plan writes when the board canary is interleaved with the job (its block, s).
CANARY_BLOCK = "canary_block_s"


@dataclass(frozen=True)
class Job:
    """One (model, variant, device, runtime) measurement with its settings."""

    model: str
    variant: str
    device: str
    runtime: str
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        """Stable identity inside a run: resume matches stored jobs on it."""
        ident = [self.model, self.variant, self.device, self.runtime, self.settings]
        return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]

    def label(self) -> str:
        return f"{self.model} [{self.variant}] on {self.device}/{self.runtime}"

    @property
    def canary_block_s(self) -> float | None:
        """The interleaved canary's block (s), when the plan put the canary inside this job's window."""
        value = self.settings.get(CANARY_BLOCK)
        return None if value is None else float(value)


# Metric columns of the results table; the agent's result event and the store agree on them.
METRICS = (
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "cv", "min_ms", "max_ms",
    "throughput", "n_iters", "window_s", "p50_ci_lo_ms", "p50_ci_hi_ms",
    "peak_rss_mb", "rss_before_load_mb", "accuracy", "eval_n",
    "energy_mj", "avg_power_w", "throttled", "load_s", "first_infer_ms", "threads", "precision",
    "engine_build_s", "repeats", "noisy", "unstable",
)  # fmt: skip
# Metric columns holding text: ``noisy`` and ``unstable`` are the reasons for the mark (NULL: no mark).
TEXT_METRICS = ("precision", "noisy", "unstable")

# What the store keeps about each built variant (its ``variants`` table; results join it).
# ``precision`` there is the weights' precision; a result's ``precision`` is what the runtime ran.
VARIANT_COLUMNS = (
    "model", "chain", "sha256", "size_bytes", "params", "macs", "sparsity", "precision", "opset",
    "build_s", "host_accuracy", "agreement", "cosine",
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

    @classmethod
    def failed(cls, reason: str, **details: Any) -> JobResult:
        return cls(status="failed", error=reason, details=details)
