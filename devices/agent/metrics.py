"""Every metric of a result, defined once: its store column, where the agent's result
event carries it, its type, unit, which way is better, the gate's name for it, and how a
change of it reads.

The agent's result event is the metrics' origin, so the table lives beside it, in the one
package every side may import: the coordinator reads (and checks) result events with it,
the store makes its columns from it, the gate maps its policy's metric names through it,
the report takes directions, names and change texts from it. Adding a metric is one row
here (plus a store migration when it is a new column; none for a metric the store keeps in
the result's details JSON, ``Metric.details``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union


@dataclass(frozen=True)
class Metric:
    column: str  # the results table's column and the DataFrame's
    source: Optional[Tuple[Union[str, int], ...]]  # path in the agent's result event; None: the coordinator's
    kind: str = "number"  # number: finite float; count: int >= 0; text: a string; flag: a bool
    unit: str = ""
    better: Optional[str] = None  # "lower" | "higher" | None (not a quality)
    required: bool = False  # a result event without it is malformed
    gate: str = ""  # the release policy's name for it ("" when the gate does not judge it)
    points: bool = False  # a change is a difference in points, not relative (accuracy)
    percentile: Optional[int] = None  # a latency percentile: the gate recomputes it from the samples
    across: str = "median"  # how a job's repeats fold into its headline: median, sum, same (the last
    #                         window's), min, max, any (a flag), own (the coordinator's own rule)
    details: Optional[str] = None  # kept in the result's details JSON at this path (``$.task.top5``),
    #                                not in a column: ``Store.results()`` reads it back as a column


def _lat(name: str, unit: str = "ms", better: Optional[str] = None, **kw: Any) -> Metric:
    return Metric(name, ("latency", name), unit=unit, better=better, **kw)


def _pct(q: int, **kw: Any) -> Metric:
    return _lat("p%d_ms" % q, better="lower", percentile=q, **kw)


# In the results table's column order (the store's schema versions append at the end).
METRIC_TABLE = (
    _pct(50, required=True, gate="latency_p50"),
    _pct(90, gate="latency_p90"),
    _pct(95),
    _pct(99, gate="latency_p99"),
    _lat("mean_ms", better="lower"),
    _lat("std_ms"),
    _lat("cv", unit=""),
    _lat("min_ms", across="min"),
    _lat("max_ms", across="max"),
    Metric("throughput", ("latency", "throughput_ips"), unit="inferences/s", better="higher"),
    Metric("n_iters", ("latency", "n"), "count", required=True, across="sum"),
    _lat("window_s", unit="s", across="sum"),
    Metric("p50_ci_lo_ms", ("latency", "p50_ci_ms", 0), unit="ms", across="own"),
    Metric("p50_ci_hi_ms", ("latency", "p50_ci_ms", 1), unit="ms", across="own"),
    Metric("peak_rss_mb", ("peak_rss_mb",), unit="MB", better="lower", gate="peak_memory", across="max"),
    Metric("rss_before_load_mb", ("rss_before_load_mb",), unit="MB", across="same"),
    Metric("accuracy", ("accuracy",), better="higher", gate="accuracy", points=True),
    Metric("eval_n", ("eval_n",), "count", across="same"),
    Metric("energy_mj", ("energy_mj",), unit="mJ", better="lower", gate="energy_per_inference"),
    Metric("avg_power_w", ("avg_power_w",), unit="W", better="lower"),
    Metric("throttled", ("throttled",), "flag", across="any"),
    Metric("load_s", ("load_s",), unit="s"),
    Metric("first_infer_ms", ("first_infer_ms",), unit="ms"),
    Metric("threads", ("threads",), "count", across="same"),
    Metric("precision", ("precision",), "text", across="same"),
    Metric("engine_build_s", ("runtime", "options", "engine_build_s"), unit="s"),  # TensorRT only
    Metric("repeats", None, "count", across="own"),  # the number of windows the headline combines
    Metric("noisy", ("noisy",), "text", across="own"),  # the mark's reason; NULL: no mark
    Metric("unstable", ("unstable",), "text", across="own"),
    # The coordinator's mark of a variant whose outputs are past the suite's fidelity limit
    # against its reference (the reason; NULL: no mark); the gate's ``degraded: fail`` reads it.
    Metric("degraded", None, "text", gate="degraded", across="own"),
    # The operating point the board measured at (``scenarios/``: the result's ``scenario``): the
    # scenario, input batch, requests in flight (the search's choice with p99_bound_ms) and input
    # resolution (H x W of a 4-D input). Throughput counts the batch in every scenario but
    # single-stream, whose throughput is iterations per second as it always was.
    Metric("scenario", ("scenario", "name"), "text", across="same"),
    Metric("batch", ("scenario", "batch"), "count", across="same"),
    Metric("inflight", ("scenario", "inflight"), "count", across="same"),
    Metric("resolution", ("scenario", "resolution"), "text", across="same"),
    # What a paced window and the offline search report, kept in the result's details.
    Metric("kept_up", None, "flag", across="same", details="$.scenario.kept_up"),
    Metric("achieved_hz", None, unit="inferences/s", better="higher", across="same", details="$.scenario.achieved_hz"),
    Metric("late_fraction", None, better="lower", across="same", details="$.scenario.late_fraction"),
    Metric("search_windows", None, "count", across="same", details="$.scenario.search.count"),
    # Task metrics (``harness.tasks``: the coordinator's, from the predictions the board decoded),
    # kept in the result's details; ``quality`` is the task's headline (``quality_metric`` names
    # it: top1, map_50_95, miou, or a custom metric's name), the y axis of the fronts.
    *(Metric(name, None, better="higher", points=True, across="same", details="$.task." + name)
      for name in ("quality", "top1", "top5", "map_50_95", "map_50", "miou", "pixel_acc")),
    Metric("quality_metric", None, "text", across="same", details="$.task.metric"),
    # Per image on the board, apart from the timed window: taking the batch out of the eval set
    # (pre), run_all (infer), decoding + NMS (post); prep is the coordinator's image preprocessing.
    *(Metric(name, None, unit="ms", better="lower", across="same", details="$.task." + key)
      for name, key in (("pre_ms", "pre_ms"), ("eval_infer_ms", "infer_ms"), ("post_ms", "post_ms"),
                        ("prep_ms", "prep_ms"))),
)
# The interleaved canary's percentiles, kept with each window (the gate's covariates), not columns of results.
CANARY_TABLE = tuple(
    Metric(f"canary_p{q}_ms", ("canary", "latency", f"p{q}_ms"), unit="ms") for q in (50, 90, 99)
)
BY_COLUMN: Dict[str, Metric] = {m.column: m for m in METRIC_TABLE + CANARY_TABLE}
BY_GATE: Dict[str, Metric] = {m.gate: m for m in METRIC_TABLE if m.gate}
# The metrics kept in the details JSON, not in columns of their own (no schema change per metric).
IN_DETAILS = tuple(m for m in METRIC_TABLE if m.details)


def change_text(change: Any, points: bool = False, missing: str = "") -> str:
    """A change as people read it: relative (``change`` = new / old - 1) as ``+6.5 %``; for
    a metric in ``points`` (accuracy: new - old in percentage points) as ``-0.80 pts``."""
    try:
        value = float(change)
    except (TypeError, ValueError):
        return missing
    if value != value or value in (float("inf"), float("-inf")):
        return missing
    return "%+.2f pts" % value if points else "%+.1f %%" % (value * 100)


def limit_text(threshold: Any, points: bool = False, missing: str = "") -> str:
    """The policy's limit on a change: ``+5 %`` more (``threshold`` a fraction), ``-1 pts``
    of a metric in points."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        return missing
    return "-%g pts" % value if points else "+%g %%" % (value * 100)
