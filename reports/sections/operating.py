"""Operating curves: throughput against p99 latency, per device and model, a trace per variant.

Why this chart: under load a board trades latency for throughput: more requests in flight
(or a bigger batch) raise the inferences per second until the board is saturated, and the
tail latency all along (docs/measurement.md, "Scenarios and axes"). A product asks for a
throughput at a latency ("30 FPS under 50 ms p99"), so each variant's curve shows where it
stands: a point per operating point measured (one job: scenario, batch, requests in flight,
threads, resolution: its ``point``), joined in order of batch, then requests in flight, so the
line is the variant's curve as its load rises. A p99 budget (the suite's ``report:
{p99_budget_ms}``) is a vertical line and a throughput floor (``min_throughput``) a horizontal
one: the points up and to the left of both are the ones that fit.

Below the charts, per variant and runtime, its best point: the highest throughput whose p99
is within the budget (any p99 without one), with how many windows an offline search took to
find it (``p99_bound_ms``, where the job searched). The section renders when some result has
an operating point other than the default; the board canary is never plotted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from reports import fmt
from reports.filters import data_attrs
from reports.fronts import runtime_styles
from reports.plotstyle import axis_style, base_layout
from reports.sections.base import Block, ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["OperatingSection", "best_points", "curve_traces"]

_ORDER = ["batch", "inflight", "threads", "point"]


def _traces_of(points: pd.DataFrame, styles: Mapping[str, object]) -> list[go.Scatter]:
    """One trace per (variant, runtime): its points in load order, labelled with their point."""
    traces = []
    for (variant, runtime), sub in points.groupby(["variant", "runtime"], sort=True):
        sub = sub.sort_values(_ORDER, kind="stable", na_position="first")
        style = styles.get(str(runtime))
        hover = [f"{fmt.plot_text(variant)} \u00b7 {fmt.plot_text(runtime)}<br>{fmt.plot_text(r['point'] or 'default')}"
                 f"<br>p99 {fmt.ms(r['p99_ms'])}, p50 {fmt.ms(r['p50_ms'])}<br>{r['throughput']:.4g} inferences/s"
                 for r in sub.to_dict("records")]
        traces.append(go.Scatter(
            x=sub["p99_ms"].astype(float).tolist(), y=sub["throughput"].astype(float).tolist(), mode="lines+markers",
            name=fmt.plot_text(f"{variant} \u00b7 {runtime}"), text=hover, hovertemplate="%{text}<extra></extra>",
            marker={"size": 8, "symbol": getattr(style, "symbol", "circle")}, meta={"runtime": str(runtime)},
            line={"dash": getattr(style, "dash", "solid"), "width": 1.5},
        ))  # fmt: skip
    return traces


def curve_traces(points: pd.DataFrame) -> list[go.Scatter]:
    """The traces of one (device, model)'s points (ok rows with finite p99 and throughput)."""
    return _traces_of(points, runtime_styles(list(points["runtime"])))


def _figure(points: pd.DataFrame, title: str, styles: Mapping[str, object], p99_ms: float | None,
            floor: float | None) -> go.Figure:
    shapes = []
    if p99_ms is not None:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": p99_ms, "x1": p99_ms, "y0": 0, "y1": 1,
                       "line": {"color": "#d62728", "dash": "dot", "width": 1}})
    if floor is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": floor, "y1": floor,
                       "line": {"color": "#d62728", "dash": "dot", "width": 1}})
    layout = base_layout(title, 380, shapes=shapes, xaxis=axis_style(title={"text": "p99 latency (ms)"}),
                         yaxis=axis_style(title={"text": "throughput (inferences/s)"}), legend={"font": {"size": 10}})
    return go.Figure(data=_traces_of(points, styles), layout=layout)


def best_points(ok: pd.DataFrame, p99_ms: float | None = None) -> pd.DataFrame:
    """Per (device, model, variant, runtime), the point with the highest throughput whose p99 is
    at most ``p99_ms`` (any p99 when None); ``fits`` False where none is within it (the row then
    holds the point of lowest p99, the closest miss)."""
    keys = ["device", "model", "variant", "runtime"]
    timed = ok[np.isfinite(ok["p99_ms"].astype(float)) & np.isfinite(ok["throughput"].astype(float))]
    within = timed if p99_ms is None else timed[timed["p99_ms"] <= p99_ms]
    best = within.sort_values([*keys, "throughput"], ascending=[True] * 4 + [False], kind="stable")
    best = best.groupby(keys, sort=True).head(1).assign(fits=True)
    closest = timed.sort_values([*keys, "p99_ms"], kind="stable").groupby(keys, sort=True).head(1)
    misses = closest.merge(best[keys], on=keys, how="left", indicator=True)
    misses = misses[misses["_merge"] == "left_only"].drop(columns="_merge").assign(fits=False)
    return pd.concat([best, misses], ignore_index=True).sort_values(keys, kind="stable").reset_index(drop=True)


def _best_table(ok: pd.DataFrame, p99_ms: float | None) -> str:
    best = best_points(ok, p99_ms)
    if best.empty:
        return ""
    rows = []
    for r in best.to_dict("records"):
        windows = r.get("search_windows")
        found = "" if fmt.is_missing(windows) else f"{int(windows)} windows"
        point = fmt.esc(r["point"] or "default") + ("" if r["fits"] else ' <span class="failed">(p99 over)</span>')
        cells = (Cell(fmt.esc(r["device"])), Cell(fmt.esc(r["model"])), Cell(fmt.esc(r["variant"])),
                 Cell(fmt.esc(r["runtime"])), Cell(point), Cell(f"{float(r['throughput']):.4g}", True),
                 Cell(fmt.ms(r["p99_ms"]), True), Cell(found))  # fmt: skip
        rows.append(Row(cells, attrs=data_attrs(device=r["device"], model=r["model"], runtime=r["runtime"])))
    headers = [("Device", False), ("Model", False), ("Variant", False), ("Runtime", False), ("Best point", False),
               ("Inferences/s", True), ("p99", True), ("Search", False)]  # fmt: skip
    bound = "" if p99_ms is None else f" whose p99 is at most {fmt.ms(p99_ms)}"
    intro = f'<p class="note">Per variant and runtime, the point of highest throughput{bound}.</p>'
    return intro + html_table(headers, rows, css="operating")


class OperatingSection(ReportSection):
    """Throughput vs p99 per device and model, when the run measured operating points."""

    name = "operating"
    title = "Operating points"
    order = 18

    def render(self, ctx: ReportContext) -> SectionOutput:
        ok = ctx.candidates
        if ok.empty or not (ok["point"] != "").any():
            return SectionOutput()
        budget = ctx.budget
        p99_ms = budget.p99_ms if budget is not None else None
        floor = budget.min_throughput if budget is not None else None
        styles = runtime_styles(list(ctx.measured["runtime"]))
        timed = ok[np.isfinite(ok["p99_ms"].astype(float)) & np.isfinite(ok["throughput"].astype(float))]
        intro = ('<p class="note">Throughput (inferences per second, batch included) against p99 latency: a line per '
                 "variant and runtime through its operating points (batch, then requests in flight, rising); the "
                 "hover names each point. Dotted lines: the report's p99 budget and throughput floor.</p>")
        blocks: list[Block] = [intro]
        for device, on_device in timed.groupby("device", sort=True):
            blocks += [f'<div class="group"{data_attrs(device=str(device))}>', f"<h3>{fmt.esc(device)}</h3>"]
            for model, points in on_device.groupby("model", sort=True):
                attrs = data_attrs(device=str(device), model=str(model), runtimes=points["runtime"])
                fig = _figure(points, f"{model} on {device}: throughput vs p99", styles, p99_ms, floor)
                blocks += [f'<div class="chart wide"{attrs}>', fig, "</div>"]
            blocks.append("</div>")
        blocks.append(_best_table(timed, p99_ms))
        return SectionOutput(tuple(blocks))
