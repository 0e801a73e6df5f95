"""A job's repeats (timed windows in fresh agent processes) folded into its headline result.

Run-to-run noise lives between processes, not between iterations (docs/measurement.md, trap 1):
so the headline p50 of a job with several repeats is the median of the repeats' p50s, and
its confidence interval comes from the spread of those repeat values (distribution-free,
order statistics of the median), not from the iterations of one window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from devices.agent.metrics import METRIC_TABLE
from devices.agent.stats import median_ci_ranks, unstable_reason
from harness.records import JobResult, Repeat


def _across(rule: str) -> tuple[str, ...]:
    """The metrics whose repeats fold by ``rule`` (``Metric.across``)."""
    return tuple(m.column for m in METRIC_TABLE if m.across == rule)


_MEDIAN, _SUMMED, _SAME = _across("median"), _across("sum"), _across("same")
# Details of one window worth keeping per repeat (the rest describes the board, kept once).
_REPEAT_DETAILS = ("window", "stop", "board_state", "cooldown_s", "temp_before_c", "temp_after_c")


def as_repeat(result: JobResult, index: int, board: str | None, started: float, finished: float) -> Repeat:
    """One measured window, as the store keeps it."""
    summary = {k: v for k, v in result.metrics.items() if v is not None}
    summary.update({k: result.details[k] for k in _REPEAT_DETAILS if k in result.details})
    return Repeat(index, board, summary, result.samples_ns, started, finished)


def combine(repeats: list[Repeat], last: JobResult) -> JobResult:
    """The job's result from all of its repeats (``last``: the newest window's full result,
    whose facts and details describe the board). One repeat is its own headline."""
    reps = sorted(repeats, key=lambda r: r.index)
    if len(reps) == 1:
        metrics = dict(last.metrics, repeats=1)
        return JobResult("ok", metrics=metrics, samples_ns=last.samples_ns, variant=last.variant, facts=last.facts,
                         details=last.details, attempts=last.attempts, repeats=reps)
    s = [r.summary for r in reps]
    metrics: dict[str, Any] = {}
    for key in _MEDIAN:
        values = [x[key] for x in s if x.get(key) is not None]
        metrics[key] = float(np.median(values)) if values else None
    for key in _SUMMED:
        values = [x[key] for x in s if x.get(key) is not None]
        metrics[key] = float(np.sum(values)) if values else None
    for key in _SAME:
        metrics[key] = last.metrics.get(key)
    for fold, keys in ((min, _across("min")), (max, _across("max"))):
        for key in keys:
            metrics[key] = fold((x[key] for x in s if x.get(key) is not None), default=None)
    for key in _across("any"):
        metrics[key] = any(bool(x.get(key)) for x in s)
    metrics["repeats"] = len(reps)
    p50s = sorted(x["p50_ms"] for x in s if x.get("p50_ms") is not None)
    if p50s:
        lo, hi = median_ci_ranks(len(p50s))
        metrics.update(p50_ci_lo_ms=p50s[lo], p50_ci_hi_ms=p50s[hi])
    metrics["noisy"] = _marks(s, "noisy")
    metrics["unstable"] = unstable_mark(s)
    details = dict(last.details, repeats={"n": len(reps), "p50_ms": [x.get("p50_ms") for x in s],
                                          "boards": sorted({r.board for r in reps if r.board})})
    return JobResult("ok", metrics=metrics, variant=last.variant, facts=last.facts, details=details,
                     attempts=last.attempts, repeats=reps)


def unstable_mark(summaries: list[dict[str, Any]]) -> str | None:
    """Why a job's headline is unstable: its repeats' p50s trip pyperf's rules, or at least half
    of its windows are unstable themselves (the median of the repeats shrugs off a minority)."""
    p50s = sorted(x["p50_ms"] for x in summaries if x.get("p50_ms") is not None)
    marked = [x for x in summaries if x.get("unstable")]
    majority = _marks(summaries, "unstable") if 2 * len(marked) >= len(summaries) else None
    return "; ".join(m for m in (_between(p50s), majority) if m) or None


def _between(p50s: list[float]) -> str | None:
    """pyperf's rules where pyperf applies them: to values from fresh processes (the repeats' p50s)."""
    if len(p50s) < 2:
        return None
    x = np.asarray(p50s)
    why = unstable_reason({"mean_ms": float(x.mean()), "std_ms": float(x.std(ddof=1)), "cv": None,
                           "min_ms": float(x.min()), "max_ms": float(x.max())})
    return None if why is None else f"between repeats: {why}"


def _marks(summaries: list[dict[str, Any]], key: str) -> str | None:
    """"2/5 repeats <key>: <first reason>", or None when no repeat carries the mark."""
    reasons = [x[key] for x in summaries if x.get(key)]
    if not reasons:
        return None
    return f"{len(reasons)}/{len(summaries)} repeats {key}: {reasons[0]}"
