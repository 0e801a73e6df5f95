"""Repeats: per configuration, the p50 of every timed window next to the headline p50.

Why: with ``measure.repeats`` a job runs several timed windows, each in a fresh agent
process, and its headline p50 is the median of theirs with a distribution-free 95% CI
(``harness.coordinator.repeats``). Run-to-run noise lives between processes, so the spread
of the repeats is the honest error of a headline number; a strip of them shows at a glance
whether a configuration is steady or one window went astray. One chart per (device,
model), a row per (variant, runtime) with two or more repeats: a dot per repeat's p50 (a
cross when that window was marked noisy or unstable), a diamond at the headline p50 with
its CI. The board canary runs one window per job and is not shown. The data come from
``ReportContext.repeats`` (``Store.repeats(run=...)``); without it the section is omitted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from reports import fmt, marks
from reports.canary import without_canary
from reports.filters import data_attrs
from reports.fronts import RuntimeStyle, runtime_styles
from reports.plotstyle import axis_style, base_layout
from reports.sections.base import IDENTITY_COLUMNS, Block, ReportContext, ReportSection, SectionOutput

__all__ = ["HEADLINE_NAME", "RepeatsSection", "repeat_strip"]

HEADLINE_NAME = "headline p50 (median) with 95% CI"
ID = list(IDENTITY_COLUMNS)
_INTRO = (
    '<p class="note">Each dot is one repeat\'s p50: a timed window in a fresh process. The '
    "diamond is the headline p50 (the median of the repeats) with its 95% CI. A cross marks a "
    "window that was noisy or unstable. Only configurations with two or more repeats are "
    "shown.</p>"
)
_ROW_PX, _FRAME_PX = 28, 190


def _label(variant: pd.Series, runtime: pd.Series) -> pd.Series:
    """Row labels ``variant \u00b7 runtime``, plotly-escaped (vectorised)."""
    return (variant.astype(str) + " \u00b7 " + runtime.astype(str)).map(fmt.plot_text)


def repeat_strip(reps: pd.DataFrame, heads: pd.DataFrame, title: str,
                 styles: Mapping[str, RuntimeStyle]) -> go.Figure:  # fmt: skip
    """The strip chart of one (device, model).

    Args:
        reps: its repeat rows (``variant``, ``runtime``, ``repeat``, ``p50_ms``, marks if any).
        heads: its results rows of the same configurations (headline p50 and CI).
        title: raw title; escaped here.
        styles: runtime -> colour and marker, as in the Pareto charts.
    """
    traces: list[go.Scatter] = []
    reps = reps.assign(_y=_label(reps["variant"], reps["runtime"]))
    heads = heads.assign(_y=_label(heads["variant"], heads["runtime"]))
    marked = marks.marked_mask(reps).to_numpy()
    reps = reps.assign(_sym=np.where(marked, "x", "circle"))
    for runtime, sub in reps.groupby("runtime", sort=True):
        style = styles.get(str(runtime), RuntimeStyle("#444", "circle"))
        traces.append(go.Scatter(
            x=sub["p50_ms"].to_numpy(dtype=float), y=sub["_y"].tolist(), mode="markers",
            name=fmt.plot_text(f"{runtime}: repeats"), legendgroup=fmt.plot_text(str(runtime)),
            marker={"color": style.color, "size": 7, "opacity": 0.75, "symbol": sub["_sym"].tolist()},
            customdata=sub["repeat"].to_numpy(dtype=float),
            hovertemplate="%{y}<br>repeat %{customdata:.0f}: p50 %{x:.4~g} ms<extra></extra>",
            meta={"runtime": str(runtime), "role": "repeats"},
        ))  # fmt: skip
    for runtime, sub in heads.groupby("runtime", sort=True):
        style = styles.get(str(runtime), RuntimeStyle("#444", "circle"))
        p50 = sub["p50_ms"].to_numpy(dtype=float)
        plus = np.nan_to_num(sub["p50_ci_hi_ms"].to_numpy(dtype=float) - p50, nan=0.0).clip(0)
        minus = np.nan_to_num(p50 - sub["p50_ci_lo_ms"].to_numpy(dtype=float), nan=0.0).clip(0)
        traces.append(go.Scatter(
            x=p50, y=sub["_y"].tolist(), mode="markers", name=HEADLINE_NAME, legendgroup="headline",
            showlegend=not any(t.meta["role"] == "headline" for t in traces),
            marker={"color": style.color, "size": 12, "symbol": "diamond-open", "line": {"width": 2}},
            error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.5},
            customdata=np.column_stack([sub["p50_ci_lo_ms"].to_numpy(dtype=float),
                                        sub["p50_ci_hi_ms"].to_numpy(dtype=float),
                                        sub["repeats"].to_numpy(dtype=float)]),
            hovertemplate=("%{y}<br>p50 %{x:.4~g} ms (median of %{customdata[2]:.0f} repeats)"
                           "<br>95% CI %{customdata[0]:.4~g}\u2013%{customdata[1]:.4~g} ms<extra></extra>"),
            meta={"runtime": str(runtime), "role": "headline"},
        ))  # fmt: skip
    n_rows = reps["_y"].nunique()
    layout = base_layout(
        title, _FRAME_PX + _ROW_PX * n_rows, margin={"l": 150, "r": 16, "t": 44, "b": 100},
        # Below the x axis title: legend y is a fraction of the plot area's height.
        legend={"orientation": "h", "yanchor": "top", "y": -50 / (_FRAME_PX - 144 + _ROW_PX * n_rows), "x": 0,
                "font": {"size": 11}},
        xaxis=axis_style(title={"text": "p50 latency (ms)"}),
        yaxis=axis_style(type="category", categoryorder="category descending"),
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout)


class RepeatsSection(ReportSection):
    """A strip of repeat p50s per configuration; omitted without repeats data."""

    name = "repeats"
    title = "Repeats"
    order = 25

    def render(self, ctx: ReportContext) -> SectionOutput:
        """One filterable chart per (device, model) with configurations of two or more repeats."""
        reps = ctx.repeats
        if reps is None or reps.empty:
            return SectionOutput()
        reps = without_canary(reps)
        reps = reps.assign(p50_ms=pd.to_numeric(reps["p50_ms"], errors="coerce"))
        reps = reps[np.isfinite(reps["p50_ms"])]
        for col in ID:
            reps[col] = reps[col].astype(str)
        counts = reps.groupby(ID)["p50_ms"].transform("size")
        reps = reps[counts >= 2]
        if reps.empty:
            return SectionOutput()
        heads = ctx.measured_ok.merge(reps[ID].drop_duplicates(), on=ID, how="inner")
        styles = runtime_styles(list(ctx.results["runtime"]))
        blocks: list[Block] = [_INTRO, '<div class="chart-grid">']
        for (device, model), sub in reps.groupby(["device", "model"], sort=True):
            mine = heads[(heads["device"] == device) & (heads["model"] == model)]
            attrs = data_attrs(device=device, model=model, runtimes=sub["runtime"])
            fig = repeat_strip(sub, mine, f"{model} on {device}: p50 of each repeat", styles)
            blocks += [f'<div class="chart"{attrs}>', fig, "</div>"]
        return SectionOutput((*blocks, "</div>"))
