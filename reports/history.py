"""A tag's history: its runs, their results and the gate's verdicts, aggregated for the dashboard.

Why a frozen bundle of frames plus pure aggregation functions: sections never open the
store (see ``reports.sections.base``), so :func:`load_history` reads everything once, and
the trend and comparison sections derive what they draw with pandas (pivot, groupby,
merge) only. A history of 365 nightly runs x 120 configurations is 43,800 results and up
to a quarter of a million values on screen; a Python loop per value would dominate the
render, a loop per chart line does not.

Definitions used by both sections:

- A run's value of a metric for a configuration (model, variant, device, runtime) is the
  median over that run's ok jobs of the configuration (normally exactly one). A job at an
  operating point other than the default (``point``: scenario, power mode, axes' values) is a
  configuration of its own, its variant named ``variant @ point``.
- The x position of a run is its start time in UTC, at the coarsest of day, minute or
  second precision that tells the tag's runs apart: a nightly history needs only the day
  (``2026-11-23``), which keeps each of its ~200,000 points at 13 bytes instead of 22.
- "Latest" is the report's run (by default the tag's newest run); "previous" the run of
  the tag started just before it.
- The board canary (``reports.canary``) is no configuration: it is left out of the
  trends, the regressions and the comparison, and :func:`canary_table` gives its own
  per-board view (first and last p50 of each run, their ratio).
- Columns newer stores added (``p90_ms``, the cold-start parts, ``started``) may be
  absent from older or hand-made frames: they are read as missing, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reports.axes import TREND_AXES, add_derived
from reports.canary import canary_pairs, without_canary
from reports.sections.base import IDENTITY_COLUMNS, UNKNOWN, ReportError

__all__ = [
    "HistoryData",
    "canary_table",
    "compare_latest",
    "load_history",
    "metric_table",
    "regression_points",
]

ID = list(IDENTITY_COLUMNS)
METRIC_COLUMNS = [a.column for a in TREND_AXES]
GATE_TO_COLUMN = {a.gate: a.column for a in TREND_AXES if a.gate}
#: Stored columns the trend metrics are read or derived from.
_STORED = list(dict.fromkeys(c for a in TREND_AXES for c in (a.sources if a.derive else (a.column,))))
#: What every history must have (what the first dashboard read); the rest may be absent.
_RESULT_REQUIRED = ["run", *ID, "status", "p50_ms", "p99_ms", "energy_mj", "peak_rss_mb", "accuracy"]
_RESULT_OPTIONAL = [c for c in (*_STORED, "started", "point") if c not in _RESULT_REQUIRED]
_VERDICT_KEEP = ["candidate", *ID, "metric", "verdict", "ratio", "ci_lo", "ci_hi", "threshold"]
_VERDICT_OPTIONAL = ["note", "q", "gate_id", "created", "baselines", "point"]


def _with_point(df: pd.DataFrame) -> pd.Series:
    """Variant names with the operating point (``variant @ offline inflight=4``) where a job has one
    (schema v9's ``point``; none before): each point is a configuration of its own, its own trend
    line, matched with the gate's verdicts of that point."""
    point = df["point"].astype("string").str.strip()
    named = point.notna() & (point != "")
    return df["variant"].where(~named, df["variant"].astype(str) + " @ " + point.fillna("")).astype(object)


def _identity(values: pd.Series) -> pd.Series:
    """Names as text, blank or missing ones as the page's ``(unknown)`` (vectorised)."""
    text = values.astype("string").str.strip()
    return text.mask(text.isna() | (text == ""), UNKNOWN).astype(object)


def _frame(df: pd.DataFrame | None, columns: list[str], what: str, optional: list[str] | None = None) -> pd.DataFrame:
    """A private copy with exactly ``columns`` and ``optional`` (missing required ones are an
    error, missing optional ones are added as NaN, extras dropped)."""
    optional = optional or []
    if df is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*columns, *optional)})
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ReportError(f"history {what} are missing columns {missing}")
    out = df[columns + [c for c in optional if c in df.columns]].copy()
    for col in optional:
        if col not in out.columns:
            out[col] = np.nan
    return out


def _x_positions(started: pd.Series) -> pd.Series:
    """UTC start times as text, as coarse as keeps them distinct (see module docstring)."""
    stamps = pd.to_datetime(started, unit="s", utc=True)
    for pattern in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        x = stamps.dt.strftime(pattern)
        if x.is_unique:
            break
    return x


@dataclass(frozen=True)
class HistoryData:
    """A tag's runs up to the report's run. Build it with :func:`load_history` or by hand.

    Attributes:
        tag: the tag the runs share.
        runs: one row per run with ``run`` and ``started`` (epoch seconds); sorted oldest
            first here, and given an ``x`` column (the chart position).
        results: one row per job: ``run``, identity, ``status`` and the trend metrics (the
            derived ones, cold start, computed here from their stored parts), ``started``.
        verdicts: the latest gate's verdicts per candidate run (``store.verdicts``).
    """

    tag: str
    runs: pd.DataFrame
    results: pd.DataFrame
    verdicts: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        runs = _frame(self.runs, ["run", "started"], "runs")
        if runs.empty:
            raise ReportError(f"no runs with tag {self.tag!r} to show a history of")
        runs["started"] = pd.to_numeric(runs["started"], errors="coerce")
        runs = runs.sort_values(["started", "run"], kind="stable").reset_index(drop=True)
        runs["x"] = _x_positions(runs["started"])
        results = _frame(self.results, _RESULT_REQUIRED, "results", _RESULT_OPTIONAL)
        results = results[results["run"].isin(runs["run"])]
        for col in ID:
            results[col] = _identity(results[col])
        results["status"] = results["status"].astype("string").str.strip().str.lower().fillna("failed")
        numeric = [*_STORED, "started"]
        results[numeric] = results[numeric].apply(pd.to_numeric, errors="coerce").astype("float64")
        results["variant"] = _with_point(results)
        results = add_derived(results)
        verdicts = _frame(self.verdicts, _VERDICT_KEEP, "verdicts", _VERDICT_OPTIONAL)
        verdicts = verdicts[verdicts["candidate"].isin(runs["run"])]
        for col in ID:
            verdicts[col] = _identity(verdicts[col])
        verdicts["variant"] = _with_point(verdicts)
        object.__setattr__(self, "runs", runs)
        object.__setattr__(self, "results", results.reset_index(drop=True))
        object.__setattr__(self, "verdicts", verdicts.reset_index(drop=True))

    @property
    def latest(self) -> str:
        """The newest run of the history (the report's run)."""
        return str(self.runs["run"].iloc[-1])

    @property
    def previous(self) -> str | None:
        """The run before :attr:`latest`, or None when the history has one run."""
        return str(self.runs["run"].iloc[-2]) if len(self.runs) > 1 else None


def load_history(store: Any, tag: str, until: str | None = None) -> HistoryData:
    """Read a tag's runs (up to and including run ``until``), results and verdicts.

    Args:
        store: an open ``harness.store.Store``.
        tag: the tag whose runs make the history.
        until: the last run to include (the report's run); the tag's newest when None.
    """
    runs = store.runs(tag=tag)
    if until is not None:
        cut = runs.loc[runs["run"] == until, "started"]
        if cut.empty:
            raise ReportError(f"run {until!r} does not have tag {tag!r}; pick a run of that tag")
        runs = runs[runs["started"] <= cut.iloc[0]]
    return HistoryData(tag, runs, store.results(tag=tag), store.verdicts(tag=tag))


def _medians(results: pd.DataFrame) -> pd.DataFrame:
    """Per (run, configuration) the median of each trend metric over its ok jobs (no canary)."""
    ok = without_canary(results[results["status"] == "ok"])
    return ok.groupby(["run", *ID], sort=False)[METRIC_COLUMNS].median()


def canary_table(history: HistoryData) -> pd.DataFrame:
    """Per run and board, the canary's first and last job (see ``reports.canary.canary_pairs``).

    Returns:
        One row per (run, device) that ran the canary, runs oldest first, with the run's
        ``x``; empty when no run of the history had a canary.
    """
    pairs = canary_pairs(history.results, by=("run", "device"))
    if pairs.empty:
        return pairs.assign(x=pd.Series(dtype=object))
    order = pd.Series(np.arange(len(history.runs)), index=history.runs["run"])
    pairs = pairs.assign(_o=pairs["run"].map(order)).sort_values(["device", "_o"], kind="stable")
    pairs = pairs.merge(history.runs[["run", "x"]], on="run", how="left")
    return pairs.drop(columns="_o").reset_index(drop=True)


def metric_table(history: HistoryData) -> pd.DataFrame:
    """Runs x (metric, model, variant, device, runtime): the values every trend line draws.

    Rows follow ``history.runs`` (oldest first, runs without results included as NaN) so
    every line of a figure shares one x array; a (metric, configuration) column that was
    never measured is dropped; columns are sorted.
    """
    medians = _medians(history.results)
    if medians.empty:
        names = ["metric", *ID]
        return pd.DataFrame(index=history.runs["run"], columns=pd.MultiIndex.from_tuples([], names=names))
    wide = medians.unstack(ID)
    wide.columns = wide.columns.set_names(["metric", *ID])
    wide = wide.dropna(axis=1, how="all")
    return wide.reindex(index=history.runs["run"]).sort_index(axis=1)


def regression_points(history: HistoryData) -> pd.DataFrame:
    """The gate's regressions on a plotted metric, with the run's x and the metric's value.

    Returns:
        Columns ``run``, ``x``, identity, ``column`` (the metric's results column),
        ``metric`` (the gate's name), ``value``, ``ratio``, ``ci_lo``, ``ci_hi``, ``threshold``.
    """
    regs = history.verdicts[history.verdicts["verdict"] == "regression"]
    regs = regs.assign(column=regs["metric"].map(GATE_TO_COLUMN)).dropna(subset=["column"])
    values = _medians(history.results).reset_index().melt(
        id_vars=["run", *ID], value_vars=METRIC_COLUMNS, var_name="column", value_name="value"
    )
    out = regs.rename(columns={"candidate": "run"}).merge(values, on=["run", *ID, "column"], how="inner")
    out = out.merge(history.runs[["run", "x"]], on="run", how="left")
    return out[np.isfinite(out["value"].astype(float))].reset_index(drop=True)


def _run_values(medians: pd.DataFrame, run: str | None, index: pd.Index) -> pd.DataFrame:
    """One run's metric values aligned with ``index`` (all NaN when the run has none)."""
    if run is None or run not in medians.index.get_level_values("run"):
        return pd.DataFrame(np.nan, index=index, columns=METRIC_COLUMNS)
    return medians.xs(run, level="run").reindex(index)


def _latest_verdicts(history: HistoryData, index: pd.Index) -> tuple[pd.DataFrame, pd.Series]:
    """The latest run's verdict per (configuration, plotted metric), and its regression count."""
    verdicts = history.verdicts[history.verdicts["candidate"] == history.latest]
    plotted = verdicts.assign(column=verdicts["metric"].map(GATE_TO_COLUMN)).dropna(subset=["column"])
    table = plotted.set_index([*ID, "column"])["verdict"]
    table = table[~table.index.duplicated(keep="first")].unstack("column") if len(table) else pd.DataFrame()
    table = table.reindex(index=index, columns=METRIC_COLUMNS)
    counts = (verdicts["verdict"] == "regression").groupby([verdicts[c] for c in ID]).sum()
    return table, counts.reindex(index).fillna(0).astype(int)


def compare_latest(history: HistoryData) -> pd.DataFrame:
    """Latest vs previous run, one row per configuration seen in either.

    Returns:
        Identity columns; ``in_previous``/``in_latest`` (the run has a job of it),
        ``ok_previous``/``ok_latest``; per trend metric ``<col>_previous``, ``<col>_latest``,
        ``<col>_change`` (relative for most, absolute display units for accuracy) and
        ``<col>_verdict`` (the gate's verdict for the latest run, or NaN); ``regressions``
        (how many of the latest run's verdicts of the configuration are regressions, any
        metric). Sorted: configurations with regressions first, then by identity.
    """
    latest, previous = history.latest, history.previous
    jobs = without_canary(history.results[history.results["run"].isin([latest, previous])])
    seen = jobs.assign(ok=jobs["status"].eq("ok")).groupby([*ID, "run"])["ok"].any().unstack("run")
    frame = pd.DataFrame(index=seen.index)
    medians = _medians(jobs)
    for label, run in (("previous", previous), ("latest", latest)):
        flags = seen[run] if run in seen.columns else pd.Series(np.nan, index=seen.index, dtype=object)
        frame[f"in_{label}"] = flags.notna()
        frame[f"ok_{label}"] = flags.eq(True)
        values = _run_values(medians, run, frame.index)
        for col in METRIC_COLUMNS:
            frame[f"{col}_{label}"] = values[col].astype(float)
    for axis in TREND_AXES:
        new, old = frame[f"{axis.column}_latest"], frame[f"{axis.column}_previous"]
        frame[f"{axis.column}_change"] = new / old - 1.0 if axis.relative else (new - old) * axis.scale
    verdicts, counts = _latest_verdicts(history, frame.index)
    for col in METRIC_COLUMNS:
        frame[f"{col}_verdict"] = verdicts[col]
    frame["regressions"] = counts
    frame = frame.reset_index()
    frame["_r"] = frame["regressions"] > 0
    frame = frame.sort_values(["_r", *ID], ascending=[False] + [True] * len(ID), kind="stable")
    return frame.drop(columns="_r").reset_index(drop=True)
