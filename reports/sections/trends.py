"""Trends: every metric of every configuration across a tag's runs, with the gate's regressions.

Why one figure per (device, model) with a row per metric: the question a nightly history
answers is "did something change, and where": the rows (p50, p90, p99, energy, peak
memory, cold start, accuracy; :data:`reports.axes.TREND_AXES`) share the time axis, so a
slowdown that also costs energy lines up vertically, and the lines of one chart are the
variants and runtimes a reader compares anyway. Colour is the variant, dash the runtime.
A row nobody measured (energy without a sensor, cold start in older runs) is left out.

A red cross sits on the point of the run in which ``harness gate`` found a regression of
that row's metric (stored verdicts). Lines are drawn from
:func:`reports.history.metric_table`; the section loops over lines, never over points, and
sends values as float32 typed arrays, so a year of nightly runs stays a few megabytes.

The board canary (``reports.canary``) is no model under test and has no chart of its own
among them; it gets the section's first chart instead: one line per board through its
first p50 of each run, a bar from there to its last p50 of that run, and under it the
within-run drift (last/first), so a board that changed between nights (top) or during a
night (bottom) is told apart from a model that changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

import reports.history as hist  # module import: see reports/sections/changes.py
from devices.agent import metrics
from reports import fmt
from reports.axes import TREND_AXES, Axis
from reports.canary import CANARY_NAME, DRIFT_WARN
from reports.filters import data_attrs
from reports.plotstyle import axis_style, base_layout
from reports.sections.base import Block, ReportContext, ReportSection, SectionOutput

if TYPE_CHECKING:
    from reports.history import HistoryData

__all__ = ["CANARY_TITLE", "REGRESSION_LEGEND", "TrendsSection", "canary_figure", "trend_figure"]

REGRESSION_LEGEND = "gate regression"
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_ROW_PX, _FRAME_PX, _GAP = 120, 110, 0.035
#: Up to this many runs lines get point markers too; beyond, markers would only clutter
#: (and cost the browser one SVG node per point).
_MARKERS_UP_TO = 60
CANARY_TITLE = "board canary: p50 across runs, and its drift within each run"
_CANARY_HOVER = (
    "%{fullData.name}<br>%{x}<br>first p50: %{y:.4~g} ms<br>last p50: %{customdata:.4~g} ms<extra></extra>"
)
_DRIFT_HOVER = "%{fullData.name}<br>%{x}<br>last / first: %{y:+.2f} %<extra></extra>"
_REGRESSION_HOVER = (
    "<b>regression</b>: %{customdata[0]}<br>%{customdata[1]} %{customdata[2]}"
    "<br>95% CI %{customdata[3]}<br>run %{customdata[4]}<extra></extra>"
)


def _change_text(value: object, axis: Axis) -> str:
    """The gate's ratio as a change: relative metrics in %, accuracy in points."""
    if fmt.is_missing(value):
        return fmt.MISSING
    v = float(value)  # type: ignore[arg-type]
    return metrics.change_text(v - 1 if axis.relative else v, not axis.relative, fmt.MISSING)


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


def canary_figure(pairs: pd.DataFrame, x: np.ndarray, run_order: pd.Index) -> go.Figure | None:
    """The board canary across a history (see the module docstring).

    Args:
        pairs: :func:`reports.history.canary_table` rows.
        x: the runs' x positions, aligned with ``run_order``.
        run_order: the history's run ids, oldest first.

    Returns:
        The figure, or None when no run had a canary.
    """
    if pairs.empty:
        return None
    palette = plotly.colors.qualitative.D3 + plotly.colors.qualitative.Dark2
    mode = "lines+markers" if len(x) <= _MARKERS_UP_TO else "lines"
    traces: list[go.Scatter] = []
    for k, (board, sub) in enumerate(pairs.groupby("device", sort=True)):
        sub = sub.set_index("run").reindex(run_order)
        first = sub["first_p50_ms"].to_numpy(dtype=float)
        last = sub["last_p50_ms"].to_numpy(dtype=float)
        gap = np.nan_to_num(last - first, nan=0.0)
        runtime = str(sub["runtime"].dropna().iloc[-1])
        name = fmt.plot_text(f"{board} · {runtime}")
        common = {"name": name, "legendgroup": f"b{k}", "mode": mode, "connectgaps": False,
                  "line": {"color": palette[k % len(palette)], "width": 1.5}, "marker": {"size": 4},
                  "meta": {"runtime": runtime, "role": "canary"}}  # fmt: skip
        traces.append(go.Scatter(
            x=x, y=first.astype(np.float32), customdata=last.astype(np.float32), hovertemplate=_CANARY_HOVER,
            error_y={"type": "data", "symmetric": False, "array": np.clip(gap, 0, None).astype(np.float32),
                     "arrayminus": np.clip(-gap, 0, None).astype(np.float32), "thickness": 1, "width": 2},
            showlegend=True, xaxis="x", yaxis="y", **common,
        ))  # fmt: skip
        drift = ((sub["drift"].to_numpy(dtype=float) - 1.0) * 100).astype(np.float32)
        traces.append(go.Scatter(x=x, y=drift, hovertemplate=_DRIFT_HOVER, showlegend=False, xaxis="x2",
                                 yaxis="y2", **common))  # fmt: skip
    rows = [Axis("first_p50_ms", "canary p50 (ms)", 1.0, False), Axis("drift", "last / first (%)", 1.0, False)]
    warn = DRIFT_WARN * 100
    shapes = [{"type": "line", "xref": "x2 domain", "x0": 0, "x1": 1, "yref": "y2", "y0": y, "y1": y,
               "line": {"color": "#d62728", "width": 1, "dash": "dot"}} for y in (-warn, 0.0, warn)]  # fmt: skip
    shapes[1]["line"] = {"color": "#888", "width": 1}
    layout = base_layout(
        CANARY_TITLE, _FRAME_PX + _ROW_PX * 2, margin={"l": 70, "r": 16, "t": 44, "b": 40},
        legend={"x": 1.01, "y": 1, "font": {"size": 11}}, hovermode="closest",
        hoverlabel={"align": "left", "namelength": -1}, shapes=shapes, **_row_layout(rows),
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout)


def _canary_blocks(history: HistoryData, x: np.ndarray) -> list[Block]:
    """The canary chart in a filterable block, or nothing without a canary."""
    pairs = hist.canary_table(history)
    fig = canary_figure(pairs, x, pd.Index(history.runs["run"]))
    if fig is None:
        return []
    attrs = data_attrs(model=CANARY_NAME, runtimes=pairs["runtime"].dropna())
    return ['<div class="group"><h3>Board canary</h3>', f'<div class="chart wide"{attrs}>', fig, "</div></div>"]


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
        # One object array shared by every line: plotly.py validates it without a per-item loop.
        x = np.asarray(history.runs["x"].tolist(), dtype=object)
        canary = _canary_blocks(history, x)
        table = hist.metric_table(history)
        if table.columns.empty:
            return SectionOutput((_intro(history), *canary, '<p class="note">No successful jobs in these runs.</p>'))
        regs = hist.regression_points(history)
        styles = _styles(table)
        blocks: list[Block] = [_intro(history), *canary]
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
