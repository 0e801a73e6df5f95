"""Latency vs accuracy per device and model, with the Pareto front.

Why per (device, model): compression trades accuracy for speed within one model on one
board; mixing models or boards in a chart makes the front meaningless. Each point is one
(variant, runtime) job. The front is a step line (what is attainable at each latency),
and its points are labelled so the reader sees which variants are worth shipping.
A model without an eval set has no accuracy: its chart is p50 vs artifact size instead,
with both minimised, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from reports import fmt
from reports.pareto import pareto_front
from reports.sections.base import ReportContext, ReportSection, SectionOutput

__all__ = ["NO_EVAL_NOTE", "ParetoSection", "build_figure"]

NO_EVAL_NOTE = "no eval set: accuracy unknown"
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")
_HOVER = (
    "<b>%{customdata[0]}</b><br>runtime: %{customdata[1]}<br>p50: %{customdata[2]}"
    "<br>p99: %{customdata[3]}<br>CV: %{customdata[4]}<br>accuracy: %{customdata[5]}"
    "<br>size: %{customdata[6]}<extra></extra>"
)
# Latency spans this ratio or more -> log axis, so fast int8 points do not pile up at 0.
_LOG_AXIS_RATIO = 50.0


@dataclass(frozen=True)
class Axis:
    """The y quantity of a chart: source column, scale to display units, direction."""

    column: str
    title: str
    scale: float
    maximize: bool


ACCURACY_AXIS = Axis("accuracy", "accuracy (%)", 100.0, True)
SIZE_AXIS = Axis("size_bytes", "artifact size (MiB)", 1.0 / (1 << 20), False)


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
        ]
        for r in points.to_dict("records")
    ]


def build_figure(
    points: pd.DataFrame, axis: Axis, title: str, styles: Mapping[str, RuntimeStyle]
) -> go.Figure:
    """Scatter of ``points`` (p50 vs ``axis``), one trace per runtime, plus the front.

    Args:
        points: ok rows with finite ``p50_ms`` and ``axis.column``.
        axis: what goes on y.
        title: figure title, raw; escaped here.
        styles: runtime -> style (see :func:`runtime_styles`).
    """
    points = points.sort_values(["p50_ms", "variant", "runtime"], kind="stable")
    y = points[axis.column] * axis.scale
    fig = go.Figure()
    for runtime, sub in points.groupby("runtime", sort=True):
        style = styles.get(str(runtime), RuntimeStyle("#444", "circle"))
        plus, minus = _latency_error(sub)
        fig.add_trace(
            go.Scatter(
                x=sub["p50_ms"].tolist(),
                y=y.loc[sub.index].tolist(),
                mode="markers",
                name=fmt.plot_text(runtime),
                legendgroup=fmt.plot_text(runtime),
                marker={"color": style.color, "symbol": style.symbol, "size": 10},
                error_x={"type": "data", "symmetric": False, "array": plus.tolist(),
                         "arrayminus": minus.tolist(), "thickness": 1, "width": 3},
                customdata=_hover_data(sub),
                hovertemplate=_HOVER,
            )
        )  # fmt: skip
    on_front = pareto_front(points, "p50_ms", axis.column, maximize_y=axis.maximize)
    front = points[on_front]
    front_y = y[on_front]
    fig.add_trace(
        go.Scatter(
            x=front["p50_ms"].tolist(),
            y=front_y.tolist(),
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
    )
    p50 = points["p50_ms"]
    log_x = bool(len(points) > 1 and p50.min() > 0 and p50.max() / p50.min() >= _LOG_AXIS_RATIO)
    fig.update_layout(
        title={"text": fmt.plot_text(title), "x": 0.01},
        template="plotly_white",
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"title": {"text": "runtime"}},
        xaxis={"title": {"text": "p50 latency (ms)"}, "type": "log" if log_x else "linear"},
        yaxis={"title": {"text": axis.title}},
    )
    return fig


class ParetoSection(ReportSection):
    """One chart per device and model: accuracy (or size) vs p50 latency."""

    name = "pareto"
    title = "Latency vs. accuracy"
    order = 20

    def render(self, ctx: ReportContext) -> SectionOutput:
        """Headings per device, a chart (or a note) per model."""
        ok = ctx.ok
        if ok.empty:
            return SectionOutput(('<p class="note">No successful jobs to plot.</p>',))
        styles = runtime_styles(list(ctx.results["runtime"]))
        blocks: list[str | go.Figure] = [
            '<p class="note">Each point is one (variant, runtime) job. The dashed step '
            "line is the Pareto front; its points are labelled with the variant. Error "
            "bars: &plusmn;1 std of latency, or p50&rarr;p90 where std is missing.</p>"
        ]
        models_by_device = ctx.results.groupby("device", sort=True)["model"].unique()
        for device, models in models_by_device.items():
            blocks.append(f"<h3>{fmt.esc(device)}</h3>")
            for model in sorted(models):
                group = ok[(ok["device"] == device) & (ok["model"] == model)]
                blocks.extend(self._model_blocks(group, str(device), str(model), styles))
        return SectionOutput(tuple(blocks))

    def _model_blocks(
        self,
        group: pd.DataFrame,
        device: str,
        model: str,
        styles: Mapping[str, RuntimeStyle],
    ) -> list[str | go.Figure]:
        heading = f"<h4>{fmt.esc(model)}</h4>"
        if group.empty:
            return [heading, '<p class="note">No successful jobs for this model.</p>']
        timed = group[np.isfinite(group["p50_ms"])]
        has_accuracy = bool(np.isfinite(timed["accuracy"]).any())
        axis = ACCURACY_AXIS if has_accuracy else SIZE_AXIS
        notes: list[str] = [] if has_accuracy else [NO_EVAL_NOTE]
        points = timed[np.isfinite(timed[axis.column])]
        skipped = len(group) - len(points)
        if skipped:
            notes.append(f"{skipped} job(s) without p50 or {axis.column} not shown")
        blocks: list[str | go.Figure] = [heading]
        if notes:
            blocks.append(f'<p class="note">{fmt.esc("; ".join(notes))}</p>')
        if points.empty:
            return blocks
        suffix = "" if has_accuracy else f" ({NO_EVAL_NOTE})"
        blocks.append(build_figure(points, axis, f"{model} on {device}{suffix}", styles))
        return blocks
