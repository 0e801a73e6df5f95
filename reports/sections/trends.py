"""Trends: every metric of every configuration across a tag's runs, with the gate's regressions.

Why one figure per (device, model) with a row per metric: the question a nightly history
answers is "did something change, and where": the rows (p50, p99, energy, peak memory,
accuracy; :data:`reports.axes.TREND_AXES`) share the time axis, so a slowdown that also
costs energy lines up vertically, and the lines of one chart are the variants and
runtimes a reader compares anyway. Colour is the variant, dash the runtime.

A red cross sits on the point of the run in which ``harness gate`` found a regression of
that row's metric (stored verdicts; a p90 regression has no row and shows in the
comparison table only). Lines are drawn from :func:`reports.history.metric_table`; the
section loops over lines, never over points, and sends values as float32 typed arrays,
so a year of nightly runs stays a few megabytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

import reports.history as hist  # module import: see reports/sections/changes.py
from reports import fmt
from reports.axes import TREND_AXES, Axis
from reports.filters import data_attrs
from reports.plotstyle import axis_style, base_layout
from reports.sections.base import Block, ReportContext, ReportSection, SectionOutput

if TYPE_CHECKING:
    from reports.history import HistoryData

__all__ = ["REGRESSION_LEGEND", "TrendsSection", "trend_figure"]

REGRESSION_LEGEND = "gate regression"
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_ROW_PX, _FRAME_PX, _GAP = 120, 110, 0.035
#: Up to this many runs lines get point markers too; beyond, markers would only clutter
#: (and cost the browser one SVG node per point).
_MARKERS_UP_TO = 60
_REGRESSION_HOVER = (
    "<b>regression</b>: %{customdata[0]}<br>%{customdata[1]} %{customdata[2]}"
    "<br>95% CI %{customdata[3]}<br>run %{customdata[4]}<extra></extra>"
)


def _change_text(value: object, axis: Axis) -> str:
    """The gate's ratio as a change: relative metrics in %, accuracy in points."""
    if fmt.is_missing(value):
        return fmt.MISSING
    v = float(value)  # type: ignore[arg-type]
    return f"{(v - 1) * 100:+.1f} %" if axis.relative else f"{v:+.2f} pts"


def _row_layout(rows: list[Axis]) -> dict[str, object]:
    """Stacked rows sharing one time axis (what ``make_subplots(shared_xaxes=True)`` builds)."""
    n = len(rows)
    height = (1 - _GAP * (n - 1)) / n
    layout: dict[str, object] = {}
    for i, axis in enumerate(rows):
        top = 1 - i * (height + _GAP)
        suffix = "" if i == 0 else str(i + 1)
        layout[f"xaxis{suffix}"] = axis_style(
            type="date", anchor=f"y{suffix}", matches=None if i == 0 else "x",
            showticklabels=i == n - 1,
        )  # fmt: skip
        layout[f"yaxis{suffix}"] = axis_style(
            domain=[max(top - height, 0.0), top], anchor=f"x{suffix}",
            title={"text": axis.title, "font": {"size": 11}},
        )  # fmt: skip
    return layout


def _line_traces(sub: pd.DataFrame, rows: list[Axis], x: np.ndarray, styles: dict) -> list[go.Scatter]:
    """One line per (row, variant, runtime); legend entries on the first row only."""
    traces = []
    configs = sorted({(v, r) for _, v, r in sub.columns})
    mode = "lines+markers" if len(x) <= _MARKERS_UP_TO else "lines"
    for i, axis in enumerate(rows):
        suffix = "" if i == 0 else str(i + 1)
        for k, (variant, runtime) in enumerate(configs):
            if (axis.column, variant, runtime) not in sub.columns:
                continue
            y = (sub[(axis.column, variant, runtime)].to_numpy(dtype=float) * axis.scale).astype(np.float32)
            traces.append(go.Scatter(
                x=x, y=y, mode=mode, name=fmt.plot_text(f"{variant} \u00b7 {runtime}"),
                legendgroup=f"c{k}", showlegend=i == 0, xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                line={"color": styles["color"][variant], "dash": styles["dash"][runtime], "width": 1.5},
                marker={"size": 4}, connectgaps=False, meta={"runtime": runtime},
                hovertemplate=f"%{{fullData.name}}<br>%{{x}}<br>{axis.name}: %{{y:.4~g}}<extra></extra>",
            ))  # fmt: skip
    return traces


def _regression_traces(regs: pd.DataFrame, rows: list[Axis]) -> list[go.Scatter]:
    """Red crosses on the regressed points, one trace per (row, runtime), one legend entry."""
    traces: list[go.Scatter] = []
    for i, axis in enumerate(rows):
        suffix = "" if i == 0 else str(i + 1)
        mine = regs[regs["column"] == axis.column]
        for runtime, hits in mine.groupby("runtime", sort=True):
            custom = [
                [fmt.plot_text(f"{r['variant']} \u00b7 {r['runtime']}"), fmt.plot_text(r["metric"]),
                 _change_text(r["ratio"], axis),
                 f"{_change_text(r['ci_lo'], axis)} \u2026 {_change_text(r['ci_hi'], axis)}",
                 fmt.plot_text(r["run"])]
                for r in hits.to_dict("records")
            ]  # fmt: skip
            traces.append(go.Scatter(
                x=hits["x"].tolist(), y=(hits["value"].to_numpy(dtype=float) * axis.scale).tolist(),
                mode="markers", name=REGRESSION_LEGEND, legendgroup="regressions", showlegend=not traces,
                marker={"symbol": "x", "size": 11, "color": "#d62728", "line": {"width": 1}},
                xaxis=f"x{suffix}", yaxis=f"y{suffix}", customdata=custom,
                hovertemplate=_REGRESSION_HOVER, meta={"runtime": str(runtime), "role": "regression"},
            ))  # fmt: skip
    return traces


def trend_figure(
    sub: pd.DataFrame, regs: pd.DataFrame, x: np.ndarray, title: str, styles: dict
) -> go.Figure | None:
    """The trend chart of one (device, model).

    Args:
        sub: runs x (metric, variant, runtime) values, rows aligned with ``x``.
        regs: this (device, model)'s rows of :func:`regression_points`.
        x: the runs' x positions.
        title: raw title; escaped here.
        styles: ``{"color": {variant: css colour}, "dash": {runtime: dash}}``.

    Returns:
        The figure, or None when no row has a value.
    """
    present = set(sub.columns.get_level_values(0))
    rows = [a for a in TREND_AXES if a.column in present]
    if not rows:
        return None
    traces = _line_traces(sub, rows, x, styles) + _regression_traces(regs, rows)
    layout = base_layout(
        title, _FRAME_PX + _ROW_PX * len(rows), margin={"l": 70, "r": 16, "t": 44, "b": 40},
        legend={"x": 1.01, "y": 1, "font": {"size": 11}}, hovermode="closest",
        hoverlabel={"align": "left", "namelength": -1}, **_row_layout(rows),
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout)


def _styles(table: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Colour per variant and dash per runtime, the same in every trend chart of the page."""
    palette = plotly.colors.qualitative.D3 + plotly.colors.qualitative.Dark2
    variants = sorted(set(table.columns.get_level_values("variant")))
    runtimes = sorted(set(table.columns.get_level_values("runtime")))
    return {
        "color": {v: palette[i % len(palette)] for i, v in enumerate(variants)},
        "dash": {r: _DASHES[i % len(_DASHES)] for i, r in enumerate(runtimes)},
    }


def _intro(history: HistoryData) -> str:
    """What the charts cover and how to read them (escaped note)."""
    first, last = history.runs["x"].iloc[0], history.runs["x"].iloc[-1]
    text = (
        f"{len(history.runs)} run(s) of tag {history.tag} from {first} to {last} UTC. One chart "
        "per device and model, a row per metric, a line per variant (colour) and runtime "
        "(dash); gaps are runs in which the configuration failed or did not run. A red cross "
        "marks a regression the release gate found in that run."
    )
    return f'<p class="note">{fmt.esc(text)}</p>'


class TrendsSection(ReportSection):
    """Trend lines of a tag's history; omitted from a single run's page."""

    name = "trends"
    title = "Trends"
    order = 19

    def render(self, ctx: ReportContext) -> SectionOutput:
        """A filterable block per device with one trend chart per model."""
        history = ctx.history
        if history is None:
            return SectionOutput()
        table = hist.metric_table(history)
        if table.columns.empty:
            return SectionOutput((_intro(history), '<p class="note">No successful jobs in these runs.</p>'))
        regs = hist.regression_points(history)
        # One object array shared by every line: plotly.py validates it without a per-item loop.
        x, styles = np.asarray(history.runs["x"].tolist(), dtype=object), _styles(table)
        blocks: list[Block] = [_intro(history)]
        for device in sorted(set(table.columns.get_level_values("device"))):
            blocks += [f'<div class="group"{data_attrs(device=device)}>', f"<h3>{fmt.esc(device)}</h3>"]
            on_device = table.xs(device, axis=1, level="device")
            for model in sorted(set(on_device.columns.get_level_values("model"))):
                sub = on_device.xs(model, axis=1, level="model")
                mine = regs[(regs["device"] == device) & (regs["model"] == model)]
                fig = trend_figure(sub, mine, x, f"{model} on {device}", styles)
                if fig is None:
                    continue
                attrs = data_attrs(device=device, model=model, runtimes=sub.columns.get_level_values("runtime"))
                blocks += [f'<div class="chart wide"{attrs}>', fig, "</div>"]
            blocks.append("</div>")
        return SectionOutput(tuple(blocks))
