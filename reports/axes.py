"""The measured quantities the dashboard plots and compares, defined once.

Why one table: the same quantity (p99 latency, say) is an x axis of a Pareto chart, a row
of a trend chart, a column of the run-to-run comparison and a metric of the gate. Its
column, display scale, unit formatter, direction ("smaller is better") and the gate's name
for it must agree everywhere, so every consumer reads them from an :class:`Axis` here
instead of restating them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from devices.agent.metrics import BY_COLUMN
from reports import fmt

__all__ = [
    "ACCURACY_AXIS",
    "COLD_START_AXIS",
    "COLD_START_PARTS",
    "DERIVED_AXES",
    "ENERGY_AXIS",
    "ENGINE_BUILD_AXIS",
    "FIRST_INFER_AXIS",
    "LATENCY_AXIS",
    "LOAD_AXIS",
    "MEMORY_AXIS",
    "P90_AXIS",
    "P99_AXIS",
    "QUALITY_AXIS",
    "SIZE_AXIS",
    "TREND_AXES",
    "X_AXES",
    "Axis",
    "ErrorBars",
    "add_derived",
    "quality_axis",
]

#: Error bars of an x quantity: (plus, minus) arrays for the given points.
ErrorBars = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]
#: How a derived quantity is computed from stored columns (vectorised; NaN where unknown).
Derive = Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Axis:
    """A quantity of a chart or table.

    Attributes:
        column: source column of the results frame.
        title: axis title with the display unit.
        scale: factor from the column's unit to the display unit.
        maximize: larger is better (accuracy); smaller is better otherwise.
        errors: error bars when the quantity is an x axis, or None.
        label: how notes name the quantity ("p50"); the column name when empty.
        heading: what a chart title adds after "model on device: " ("" for the main chart).
        gate: the gate's metric name for the quantity ("" when the gate does not judge it).
        format: formatter of one value for tables and hover text.
        relative: changes are relative (%); False: absolute, in display units (points).
        derive: for a quantity the store does not keep as a column (cold start), how to
            compute ``column`` from the columns in ``sources``; None for stored columns.
        sources: the stored columns ``derive`` reads.
    """

    column: str
    title: str
    scale: float
    maximize: bool
    errors: ErrorBars | None = None
    label: str = ""
    heading: str = ""
    gate: str = ""
    format: fmt.Formatter = fmt.plain
    relative: bool = True
    derive: Derive | None = None
    sources: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Short name for notes and legends."""
        return self.label or self.column


def _latency_error(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Error bars that describe the data: the p50's confidence interval where recorded, else
    p50 -> p90 (one-sided), else none. Never +-1 std: latency is skewed, and a 0.015 ms p50 with
    a 0.07 ms std would draw a bar far below zero."""
    p50 = points["p50_ms"].to_numpy(dtype=float)
    lo = points["p50_ci_lo_ms"].to_numpy(dtype=float) if "p50_ci_lo_ms" in points else np.full_like(p50, np.nan)
    hi = points["p50_ci_hi_ms"].to_numpy(dtype=float) if "p50_ci_hi_ms" in points else np.full_like(p50, np.nan)
    tail = (points["p90_ms"] - points["p50_ms"]).clip(lower=0).to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    plus = np.where(has_ci, np.clip(hi - p50, 0, None), np.nan_to_num(tail, nan=0.0))
    minus = np.where(has_ci, np.clip(p50 - lo, 0, None), 0.0)
    return plus, np.minimum(minus, np.nan_to_num(p50, nan=0.0))


def _of(column: str, title: str, scale: float, **kw: object) -> Axis:
    """The axis of a stored metric: its direction, the gate's name for it and whether its
    changes are relative come from the metric table (``devices.agent.metrics``)."""
    m = BY_COLUMN[column]
    return Axis(column, title, scale, m.better == "higher", gate=m.gate, relative=not m.points,
                **kw)  # type: ignore[arg-type]


ACCURACY_AXIS = _of("accuracy", "accuracy (%)", 100.0, label="accuracy", format=fmt.pct)
# A task's headline metric (``harness.tasks``: top-1, mAP@[.5:.95], mIoU or a custom metric),
# named per chart by ``quality_axis`` from the jobs' ``quality_metric``.
QUALITY_AXIS = _of("quality", "task metric (%)", 100.0, label="task metric", format=fmt.pct)
#: How the task metrics read on an axis (``quality_metric`` -> name); a custom metric keeps its own.
QUALITY_NAMES = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "map_50_95": "mAP@[.5:.95]",
                 "map_50": "mAP@.5", "miou": "mIoU", "pixel_acc": "pixel accuracy"}


def quality_axis(df: pd.DataFrame) -> Axis:
    """The quality axis of ``df``'s front: its task metric where its jobs have one (the
    ``quality`` column), else top-1 ``accuracy``. A custom metric is plotted as it is
    (not as a percentage)."""
    if "quality" not in df.columns or not np.isfinite(pd.to_numeric(df["quality"], errors="coerce")).any():
        return ACCURACY_AXIS
    names = df["quality_metric"].dropna().unique() if "quality_metric" in df.columns else []
    metric = str(names[0]) if len(names) == 1 else ""
    if metric and metric not in QUALITY_NAMES:
        return replace(QUALITY_AXIS, title=metric, scale=1.0, label=metric, format=fmt.plain)
    name = QUALITY_NAMES.get(metric, QUALITY_AXIS.label)
    return replace(QUALITY_AXIS, title=f"{name} (%)", label=name)
SIZE_AXIS = Axis("size_bytes", "artifact size (MiB)", 1.0 / (1 << 20), False, label="size",
                 heading="model size", format=fmt.mib)  # fmt: skip
LATENCY_AXIS = _of("p50_ms", "p50 latency (ms)", 1.0, errors=_latency_error, label="p50", format=fmt.ms)
# No error bars on the tail: a std around p99 would suggest a precision it does not have.
P90_AXIS = _of("p90_ms", "p90 latency (ms)", 1.0, label="p90", heading="p90 latency", format=fmt.ms)
P99_AXIS = _of("p99_ms", "p99 latency (ms)", 1.0, label="p99", heading="p99 latency", format=fmt.ms)
# No error bars: the agent integrates power over the whole window, one number per job.
ENERGY_AXIS = _of("energy_mj", "energy per inference (mJ)", 1.0, label="energy", heading="energy per inference",
                  format=fmt.mj)  # fmt: skip
MEMORY_AXIS = _of("peak_rss_mb", "peak memory (MB)", 1.0, label="peak memory", heading="peak memory", format=fmt.mb)


# Cold start: what a user waits for before the first answer, apart from steady-state latency.
# The three parts are stored; their sum is derived. A TensorRT engine is built once per
# (model, board, TensorRT version) and then cached, so its build time is shown next to the
# cold start, never inside it. Older runs (and other runtimes) have NULL: the value is NaN.
LOAD_AXIS = _of("load_s", "model load (s)", 1.0, label="model load", format=fmt.seconds)
FIRST_INFER_AXIS = _of("first_infer_ms", "first inference (ms)", 1.0, label="first inference", format=fmt.ms)
ENGINE_BUILD_AXIS = _of("engine_build_s", "engine build (s)", 1.0, label="engine build", format=fmt.seconds)


def _cold_start(df: pd.DataFrame) -> pd.Series:
    """Seconds from loading the model to the first answer: load + first inference."""
    return pd.to_numeric(df["load_s"], errors="coerce") + pd.to_numeric(df["first_infer_ms"], errors="coerce") / 1e3


COLD_START_AXIS = Axis("cold_start_s", "cold start (s)", 1.0, False, None,
                       "cold start", "cold start (load + first inference)", format=fmt.seconds,
                       derive=_cold_start, sources=("load_s", "first_infer_ms"))  # fmt: skip
#: The stored parts of a cold start, in the order tables and hovers show them.
COLD_START_PARTS: tuple[Axis, ...] = (LOAD_AXIS, FIRST_INFER_AXIS, ENGINE_BUILD_AXIS)

#: x axes of the Pareto charts, in page order (accuracy, or size without an eval set, on y).
X_AXES: tuple[Axis, ...] = (LATENCY_AXIS, P99_AXIS, ENERGY_AXIS, MEMORY_AXIS, COLD_START_AXIS, SIZE_AXIS)
#: Rows of a trend chart and columns of the run-to-run comparison, in page order.
TREND_AXES: tuple[Axis, ...] = (LATENCY_AXIS, P90_AXIS, P99_AXIS, ENERGY_AXIS, MEMORY_AXIS, COLD_START_AXIS,
                                ACCURACY_AXIS)  # fmt: skip
#: Every axis whose column is computed rather than stored.
DERIVED_AXES: tuple[Axis, ...] = tuple(
    dict.fromkeys(a for a in (*X_AXES, *TREND_AXES) if a.derive is not None)
)


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every derived axis' column computed (in place; NaN when a source is absent)."""
    for axis in DERIVED_AXES:
        if all(c in df.columns for c in axis.sources):
            df[axis.column] = axis.derive(df).astype("float64")  # type: ignore[misc]
        else:
            df[axis.column] = np.nan
    return df
