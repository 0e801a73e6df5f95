"""Latency (and energy) vs accuracy per device and model, with the Pareto front.

Why per (device, model): compression trades accuracy for speed within one model on one
board; mixing models or boards in a chart makes the front meaningless. Each point is one
(variant, runtime) job. The front is a step line (what is attainable at each latency),
and its points are labelled so the reader sees which variants are worth shipping.
A model without an eval set has no accuracy: its chart is p50 vs artifact size instead,
with both minimised, and says so.

On a battery-powered board the cheapest variant per inference is not always the fastest
(a faster runtime may draw more power), so where a board measured energy a second chart
puts energy per inference on x, with its own front; a board without a power sensor gets
one note instead. A point measured while the board throttled is ringed: its numbers
describe a slowed board, not the variant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from reports import fmt
from reports.pareto import pareto_front
from reports.sections.base import ReportContext, ReportSection, SectionOutput, throttled_mask

__all__ = [
    "ENERGY_AXIS",
    "LATENCY_AXIS",
    "NO_EVAL_NOTE",
    "THROTTLED_LEGEND",
    "ParetoSection",
    "build_figure",
    "no_energy_note",
]

NO_EVAL_NOTE = "no eval set: accuracy unknown"
THROTTLED_LEGEND = "throttled during the window"
_THROTTLED_RING = {"symbol": "circle-open", "size": 20, "color": "#d62728", "line": {"width": 2.5}}
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")
_HOVER = (
    "<b>%{customdata[0]}</b><br>runtime: %{customdata[1]}<br>p50: %{customdata[2]}"
    "<br>p99: %{customdata[3]}<br>CV: %{customdata[4]}<br>accuracy: %{customdata[5]}"
    "<br>size: %{customdata[6]}<br>energy: %{customdata[7]}<br>avg power: %{customdata[8]}"
    "%{customdata[9]}<extra></extra>"
)
# Latency spans this ratio or more -> log axis, so fast int8 points do not pile up at 0.
_LOG_AXIS_RATIO = 50.0


#: Error bars of an x quantity: (plus, minus) arrays for the given points.
ErrorBars = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Axis:
    """A quantity of a chart: source column, scale to display units, direction, error bars.

    ``label`` is how notes name the quantity ("p50"); the column name when empty.
    """

    column: str
    title: str
    scale: float
    maximize: bool
    errors: ErrorBars | None = None
    label: str = ""


@dataclass(frozen=True)
class RuntimeStyle:
    """Colour and marker of one runtime, fixed across every chart of the page."""

    color: str
    symbol: str


def runtime_styles(runtimes: list[str]) -> dict[str, RuntimeStyle]:
    """Assign styles in sorted order so the same runtime looks the same in every chart."""
    palette = plotly.colors.qualitative.Plotly
    return {
        r: RuntimeStyle(palette[i % len(palette)], _SYMBOLS[i % len(_SYMBOLS)])
        for i, r in enumerate(sorted(set(runtimes)))
    }


def _latency_error(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Error bars: +/-1 std where recorded, else p50 -> p90 (one-sided), else none."""
    std = points["std_ms"].to_numpy(dtype=float)
    tail = (points["p90_ms"] - points["p50_ms"]).clip(lower=0).to_numpy(dtype=float)
    has_std = np.isfinite(std)
    plus = np.where(has_std, std, np.nan_to_num(tail, nan=0.0))
    minus = np.where(has_std, std, 0.0)
    return plus, minus


ACCURACY_AXIS = Axis("accuracy", "accuracy (%)", 100.0, True)
SIZE_AXIS = Axis("size_bytes", "artifact size (MiB)", 1.0 / (1 << 20), False)
LATENCY_AXIS = Axis("p50_ms", "p50 latency (ms)", 1.0, False, _latency_error, "p50")
# No error bars: the agent integrates power over the whole window, one number per job.
ENERGY_AXIS = Axis("energy_mj", "energy per inference (mJ)", 1.0, False, None, "energy")


def _hover_extra(rec: Mapping[str, object], throttled: bool) -> str:
    """Optional hover lines: the board of a pool device, and the throttling warning."""
    extra = ""
    board = rec.get("board")
    if not fmt.is_missing(board) and str(board) != rec["device"]:
        extra += f"<br>board: {fmt.plot_text(board)}"
    if throttled:
        extra += "<br><b>THROTTLED</b> during the timed window"
    return extra


def _hover_data(points: pd.DataFrame) -> list[list[str]]:
    """Pre-formatted, plotly-escaped hover fields (same units as the tables)."""
    return [
        [
            fmt.plot_text(r["variant"]),
            fmt.plot_text(r["runtime"]),
            fmt.ms(r["p50_ms"]),
            fmt.ms(r["p99_ms"]),
            fmt.pct(r["cv"]),
            fmt.pct(r["accuracy"]),
            fmt.mib(r["size_bytes"]),
            fmt.mj(r["energy_mj"]),
            fmt.watts(r["avg_power_w"]),
            _hover_extra(r, throttled),
        ]
        for r, throttled in zip(points.to_dict("records"), throttled_mask(points), strict=True)
    ]


def _runtime_trace(
    sub: pd.DataFrame, runtime: str, x: Axis, y: pd.Series, style: RuntimeStyle
) -> go.Scatter:
    """One runtime's points, with x error bars when the x quantity has them."""
    error_x = None
    if x.errors is not None:
        plus, minus = x.errors(sub)
        error_x = {"type": "data", "symmetric": False, "array": plus.tolist(),
                   "arrayminus": minus.tolist(), "thickness": 1, "width": 3}  # fmt: skip
    return go.Scatter(
        x=(sub[x.column] * x.scale).tolist(),
        y=y.loc[sub.index].tolist(),
        mode="markers",
        name=fmt.plot_text(runtime),
        legendgroup=fmt.plot_text(runtime),
        marker={"color": style.color, "symbol": style.symbol, "size": 10},
        error_x=error_x,
        customdata=_hover_data(sub),
        hovertemplate=_HOVER,
    )


def _throttled_trace(points: pd.DataFrame, x: Axis, y: pd.Series) -> go.Scatter | None:
    """A red ring around every throttled point: one legend entry, whatever the runtime."""
    mask = throttled_mask(points)
    if not mask.any():
        return None
    return go.Scatter(
        x=(points.loc[mask, x.column] * x.scale).tolist(),
        y=y[mask].tolist(),
        mode="markers",
        name=THROTTLED_LEGEND,
        marker=_THROTTLED_RING,
        hoverinfo="skip",  # the ringed point's own hover says THROTTLED
    )


def _front_trace(points: pd.DataFrame, x: Axis, axis: Axis, y: pd.Series) -> go.Scatter:
    """The dashed step line through the front, labelled with the variants."""
    on_front = pareto_front(
        points, x.column, axis.column, minimize_x=not x.maximize, maximize_y=axis.maximize
    )
    front = points[on_front]
    return go.Scatter(
        x=(front[x.column] * x.scale).tolist(),
        y=y[on_front].tolist(),
        mode="lines+text",
        name="Pareto front",
        line={"shape": "hv", "dash": "dash", "color": "#555", "width": 1.5},
        text=[fmt.plot_text(v) for v in front["variant"]],
        # The step arrives from below (accuracy) or above (size) and leaves to the
        # right, so the label goes on the free side.
        textposition="top left" if axis.maximize else "bottom left",
        textfont={"size": 11},
        hoverinfo="skip",
    )


def _log_scale(values: pd.Series) -> bool:
    """Log axis when the values span :data:`_LOG_AXIS_RATIO` or more."""
    return bool(
        len(values) > 1 and values.min() > 0 and values.max() / values.min() >= _LOG_AXIS_RATIO
    )


def build_figure(
    points: pd.DataFrame,
    axis: Axis,
    title: str,
    styles: Mapping[str, RuntimeStyle],
    x: Axis = LATENCY_AXIS,
) -> go.Figure:
    """Scatter of ``points`` (``x`` vs ``axis``), one trace per runtime, plus the front.

    Args:
        points: ok rows with finite ``x.column`` and ``axis.column``.
        axis: what goes on y.
        title: figure title, raw; escaped here.
        styles: runtime -> style (see :func:`runtime_styles`).
        x: what goes on x, minimised on the front: p50 latency, or energy per inference.
    """
    points = points.sort_values([x.column, "variant", "runtime"], kind="stable")
    y = points[axis.column] * axis.scale
    fig = go.Figure()
    for runtime, sub in points.groupby("runtime", sort=True):
        style = styles.get(str(runtime), RuntimeStyle("#444", "circle"))
        fig.add_trace(_runtime_trace(sub, str(runtime), x, y, style))
    ring = _throttled_trace(points, x, y)
    if ring is not None:
        fig.add_trace(ring)
    fig.add_trace(_front_trace(points, x, axis, y))
    x_type = "log" if _log_scale(points[x.column]) else "linear"
    fig.update_layout(
        title={"text": fmt.plot_text(title), "x": 0.01},
        template="plotly_white",
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"title": {"text": "runtime"}},
        xaxis={"title": {"text": x.title}, "type": x_type},
        yaxis={"title": {"text": axis.title}},
    )
    return fig


def no_energy_note(device: str, ok: pd.DataFrame) -> str | None:
    """One note per device naming what has no energy chart, or None when nothing is missing.

    Args:
        device: the device heading the note sits under.
        ok: the device's ok rows.
    """
    models = sorted(set(ok["model"]))
    measured = set(ok.loc[np.isfinite(ok["energy_mj"]), "model"])
    missing = [m for m in models if m not in measured]
    if not missing:
        return None
    if not measured:
        text = f"no power sensor on {device}: energy not measured"
    else:
        text = f"energy not measured on {device} for {', '.join(missing)}: no energy chart"
    return f'<p class="note">{fmt.esc(text)}</p>'


class ParetoSection(ReportSection):
    """Per device and model: accuracy (or size) vs p50 latency, and vs energy where measured."""

    name = "pareto"
    title = "Latency and energy vs. accuracy"
    order = 20

    def render(self, ctx: ReportContext) -> SectionOutput:
        """Headings per device, charts (or a note) per model."""
        ok = ctx.ok
        if ok.empty:
            return SectionOutput(('<p class="note">No successful jobs to plot.</p>',))
        styles = runtime_styles(list(ctx.results["runtime"]))
        blocks: list[str | go.Figure] = [
            '<p class="note">Each point is one (variant, runtime) job. The dashed step '
            "line is the Pareto front; its points are labelled with the variant. Error "
            "bars: &plusmn;1 std of latency, or p50&rarr;p90 where std is missing. Where the "
            "board measured power, a second chart puts energy per inference on x. A red ring "
            "marks a job during which the board throttled or changed clocks.</p>"
        ]
        models_by_device = ctx.results.groupby("device", sort=True)["model"].unique()
        for device, models in models_by_device.items():
            blocks.append(f"<h3>{fmt.esc(device)}</h3>")
            on_device = ok[ok["device"] == device]
            note = no_energy_note(str(device), on_device)
            if note:
                blocks.append(note)
            for model in sorted(models):
                group = on_device[on_device["model"] == model]
                blocks.extend(_model_blocks(group, str(device), str(model), styles))
        return SectionOutput(tuple(blocks))


def _model_blocks(
    group: pd.DataFrame, device: str, model: str, styles: Mapping[str, RuntimeStyle]
) -> list[str | go.Figure]:
    """The model's heading, then its latency chart and, where measured, its energy chart."""
    heading = f"<h4>{fmt.esc(model)}</h4>"
    if group.empty:
        return [heading, '<p class="note">No successful jobs for this model.</p>']
    timed = group[np.isfinite(group["p50_ms"])]
    has_accuracy = bool(np.isfinite(timed["accuracy"]).any())
    axis = ACCURACY_AXIS if has_accuracy else SIZE_AXIS
    suffix = "" if has_accuracy else f" ({NO_EVAL_NOTE})"
    blocks: list[str | go.Figure] = [heading]
    blocks += _chart_blocks(group, LATENCY_AXIS, axis, f"{model} on {device}{suffix}", styles,
                            [] if has_accuracy else [NO_EVAL_NOTE])  # fmt: skip
    if np.isfinite(group["energy_mj"]).any():
        title = f"{model} on {device}: energy per inference{suffix}"
        blocks += _chart_blocks(group, ENERGY_AXIS, axis, title, styles, [])
    return blocks


def _chart_blocks(
    group: pd.DataFrame,
    x: Axis,
    axis: Axis,
    title: str,
    styles: Mapping[str, RuntimeStyle],
    notes: list[str],
) -> list[str | go.Figure]:
    """A note on what the chart leaves out (if anything), then the chart (if any point)."""
    points = group[np.isfinite(group[x.column]) & np.isfinite(group[axis.column])]
    skipped = len(group) - len(points)
    if skipped:
        what = x.label or x.column
        notes = [*notes, f"{skipped} job(s) without {what} or {axis.column} not shown"]
    blocks: list[str | go.Figure] = []
    if notes:
        blocks.append(f'<p class="note">{fmt.esc("; ".join(notes))}</p>')
    if not points.empty:
        blocks.append(build_figure(points, axis, title, styles, x=x))
    return blocks
