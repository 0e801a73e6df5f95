"""One Pareto chart: points per runtime, the fronts, throttled rings, escaped hover text.

Why the traces look the way they do:

- **One front per chart, and one per runtime.** The dashed grey step line is the front over
  every runtime on the board: what is attainable there. Each runtime's own front (a dotted
  line in its colour) starts hidden in the legend; the page's runtime filter shows them
  instead of the combined one when some runtime is hidden, because the combined front
  would then point at hidden points. Fronts come from :func:`reports.pareto.pareto_front`,
  never from a second implementation.
- **Traces carry their runtime in ``meta``** (``{"runtime": name, "role": ...}``), raw: plotly
  JSON-escapes it in the page, and the filter script compares it with the names in the
  page's ``data-*`` attributes.
- **Hover text is pre-formatted** with the same formatters as the tables (one unit and
  precision everywhere) and passed through ``fmt.plot_text``; the template only indexes it.
  It says what the p50 is (the median of N repeats, its 95% CI), the cold start apart from
  the steady state (load + first inference, and a TensorRT engine build), and the noisy or
  unstable mark with the board's reason; a marked point also gets an orange ring.
- **A power mode is part of a point's name.** A job measured in a power mode (the suite's
  ``power_modes``) is labelled ``variant @ mode``, on the front and in the hover, so the
  modes of one variant read as a series along the front.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from reports import fmt, marks
from reports.axes import COLD_START_AXIS, ENGINE_BUILD_AXIS, FIRST_INFER_AXIS, LATENCY_AXIS, LOAD_AXIS, Axis
from reports.pareto import pareto_front
from reports.plotstyle import axis_style, base_layout
from reports.sections.base import throttled_mask

__all__ = [
    "FRONT_NAME",
    "MARKED_LEGEND",
    "THROTTLED_LEGEND",
    "RuntimeStyle",
    "build_figure",
    "point_label",
    "recipe_chain",
    "runtime_styles",
]

FRONT_NAME = "Pareto front"
THROTTLED_LEGEND = "throttled during the window"
MARKED_LEGEND = "unstable or noisy window"
_THROTTLED_RING = {"symbol": "circle-open", "size": 20, "color": "#d62728", "line": {"width": 2.5}}
_MARKED_RING = {"symbol": "diamond-open", "size": 17, "color": "#e67e22", "line": {"width": 2}}
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon")
_HOVER = (
    "<b>%{customdata[0]}</b><br>recipe: %{customdata[10]}%{customdata[12]}"
    "<br>runtime: %{customdata[1]}<br>p50: %{customdata[2]}%{customdata[13]}"
    "<br>p99: %{customdata[3]}<br>CV: %{customdata[4]}<br>accuracy: %{customdata[5]}"
    "<br>size: %{customdata[6]}<br>peak memory: %{customdata[11]}"
    "<br>energy: %{customdata[7]}<br>avg power: %{customdata[8]}"
    "%{customdata[14]}%{customdata[9]}<extra></extra>"
)
# Values span this ratio or more -> log axis, so fast int8 points do not pile up at 0.
_LOG_AXIS_RATIO = 50.0
CHART_HEIGHT = 380


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


def recipe_chain(variant: object) -> str:
    """A variant's recipe steps as ``a → b → c`` (the store names a variant by its chain)."""
    if fmt.is_missing(variant):
        return fmt.MISSING
    return " \u2192 ".join(step.strip() for step in str(variant).split(">"))


def point_label(rec: Mapping[str, object]) -> str:
    """A point's name, raw: its variant, and ``@ point`` when it was measured at an operating point
    other than the default (its ``point``: scenario, power mode, axes' values), or in a power mode."""
    point = rec.get("point")
    mode = point if isinstance(point, str) and point else rec.get("power_mode")
    return f"{rec['variant']}" if fmt.is_missing(mode) else f"{rec['variant']} @ {mode}"


def _hover_extra(rec: Mapping[str, object], throttled: bool) -> str:
    """Optional hover lines: the power mode, the board of a pool device, the throttling warning, the marks."""
    mode = rec.get("power_mode")
    extra = "" if fmt.is_missing(mode) else f"<br>power mode: {fmt.plot_text(mode)}"
    board = rec.get("board")
    if not fmt.is_missing(board) and str(board) != rec["device"]:
        extra += f"<br>board: {fmt.plot_text(board)}"
    if throttled:
        extra += "<br><b>THROTTLED</b> during the timed window"
    return extra + marks.hover_lines(rec)


def _p50_detail(rec: Mapping[str, object]) -> str:
    """`` (median of 5 repeats) [95% CI ...]`` after the p50, or ""; numbers only."""
    return fmt.p50_detail(rec.get("repeats"), rec.get("p50_ci_lo_ms"), rec.get("p50_ci_hi_ms"))


def _cold_start_lines(rec: Mapping[str, object]) -> str:
    """Cold start apart from the steady state: ``<br>cold start: 0.945 s (load ... + first
    inference ...)`` and ``<br>engine build: ...``, each part only when it was measured."""
    parts = [f"{a.label} {a.format(rec.get(a.column))}" for a in (LOAD_AXIS, FIRST_INFER_AXIS)
             if not fmt.is_missing(rec.get(a.column))]  # fmt: skip
    total = rec.get(COLD_START_AXIS.column)
    text = ""
    if not fmt.is_missing(total):
        text = f"<br>cold start: {COLD_START_AXIS.format(total)} ({' + '.join(parts)})"
    elif parts:
        text = f"<br>cold start: {', '.join(parts)}"
    build = rec.get(ENGINE_BUILD_AXIS.column)
    if not fmt.is_missing(build):
        text += f"<br>{ENGINE_BUILD_AXIS.label}: {ENGINE_BUILD_AXIS.format(build)} (once, then cached)"
    return text


def _variant_id(rec: Mapping[str, object]) -> str:
    """`` (id 1a2b3c4d)`` when the artifact's content hash is known: which build this was."""
    vid = rec.get("variant_id")
    return "" if fmt.is_missing(vid) else f" (id {fmt.plot_text(str(vid)[:8])})"


def _hover_data(points: pd.DataFrame) -> list[list[str]]:
    """Pre-formatted, plotly-escaped hover fields (same units as the tables).

    Indices 0-9 are the original fields; later ones are appended so templates and tests
    that index them keep their meaning: 13 what the p50 is (repeats, CI), 14 cold start.
    """
    return [
        [
            fmt.plot_text(point_label(r)),
            fmt.plot_text(r["runtime"]),
            fmt.ms(r["p50_ms"]),
            fmt.ms(r["p99_ms"]),
            fmt.pct(r["cv"]),
            fmt.pct(r["accuracy"]),
            fmt.mib(r["size_bytes"]),
            fmt.mj(r["energy_mj"]),
            fmt.watts(r["avg_power_w"]),
            _hover_extra(r, throttled),
            fmt.plot_text(recipe_chain(r["variant"])),
            fmt.mb(r["peak_rss_mb"]),
            _variant_id(r),
            _p50_detail(r),
            _cold_start_lines(r),
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
        meta={"runtime": runtime, "role": "points"},
    )


def _ring_traces(points: pd.DataFrame, mask: pd.Series, x: Axis, y: pd.Series, legend: str, group: str,
                 marker: dict, role: str) -> list[go.Scatter]:
    """A ring around every point of ``mask``; one trace per runtime (so the runtime filter can
    hide it), one legend entry for all of them; no hover of its own (the point's names why)."""
    rings = []
    for runtime, sub in points[mask].groupby("runtime", sort=True):
        rings.append(
            go.Scatter(
                x=(sub[x.column] * x.scale).tolist(),
                y=y.loc[sub.index].tolist(),
                mode="markers",
                name=legend,
                legendgroup=group,
                showlegend=not rings,
                marker=marker,
                hoverinfo="skip",
                meta={"runtime": str(runtime), "role": role},
            )
        )
    return rings


def _throttled_traces(points: pd.DataFrame, x: Axis, y: pd.Series) -> list[go.Scatter]:
    """A red ring around every throttled point (its own hover says THROTTLED)."""
    return _ring_traces(points, throttled_mask(points), x, y, THROTTLED_LEGEND, "throttled", _THROTTLED_RING, "ring")


def _marked_traces(points: pd.DataFrame, x: Axis, y: pd.Series) -> list[go.Scatter]:
    """An orange diamond around every point marked noisy or unstable (its hover names the mark)."""
    return _ring_traces(points, marks.marked_mask(points, marks.WINDOW_MARKS), x, y, MARKED_LEGEND, "marked",
                        _MARKED_RING, "mark-ring")


def _front_mask(points: pd.DataFrame, x: Axis, axis: Axis) -> pd.Series:
    """Front membership with each axis' own direction (accuracy up, costs down)."""
    return pareto_front(points, x.column, axis.column, minimize_x=not x.maximize,
                        maximize_y=axis.maximize)  # fmt: skip


def _front_trace(
    front: pd.DataFrame, x: Axis, axis: Axis, y: pd.Series, name: str, line: dict[str, object],
    meta: dict[str, str], visible: bool | str = True,
) -> go.Scatter:
    """A step line through front points, labelled with the variants."""
    return go.Scatter(
        x=(front[x.column] * x.scale).tolist(),
        y=y.loc[front.index].tolist(),
        mode="lines+text",
        name=name,
        legendgroup=meta.get("runtime") and fmt.plot_text(meta["runtime"]),
        line={"shape": "hv", **line},
        text=[fmt.plot_text(point_label(r)) for r in front.to_dict("records")],
        # The step arrives from below (accuracy) or above (size) and leaves to the
        # right, so the label goes on the free side.
        textposition="top left" if axis.maximize else "bottom left",
        textfont={"size": 11},
        hoverinfo="skip",
        visible=visible,
        meta=meta,
    )


def _fronts(
    points: pd.DataFrame, x: Axis, axis: Axis, y: pd.Series, styles: Mapping[str, RuntimeStyle]
) -> list[go.Scatter]:
    """Each runtime's front (legend-only) when there are several, then the combined front."""
    traces = []
    runtimes = sorted(set(points["runtime"]))
    if len(runtimes) > 1:
        for runtime in runtimes:
            sub = points[points["runtime"] == runtime]
            color = styles.get(runtime, RuntimeStyle("#444", "circle")).color
            traces.append(_front_trace(
                sub[_front_mask(sub, x, axis)], x, axis, y, f"{fmt.plot_text(runtime)} front",
                {"dash": "dot", "color": color, "width": 1.5},
                {"runtime": runtime, "role": "front"}, visible="legendonly",
            ))  # fmt: skip
    combined = points[_front_mask(points, x, axis)]
    traces.append(_front_trace(combined, x, axis, y, FRONT_NAME,
                               {"dash": "dash", "color": "#555", "width": 1.5},
                               {"role": "front-all"}))  # fmt: skip
    return traces


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
    """Scatter of ``points`` (``x`` vs ``axis``), one trace per runtime, plus the fronts.

    Args:
        points: ok rows with finite ``x.column`` and ``axis.column``.
        axis: what goes on y.
        title: figure title, raw; escaped here.
        styles: runtime -> style (see :func:`runtime_styles`).
        x: what goes on x, optimised on the front together with ``axis``.

    Returns:
        The figure; the combined front is always its last trace.
    """
    points = points.sort_values([x.column, "variant", "runtime"], kind="stable")
    y = points[axis.column] * axis.scale
    traces: list[go.Scatter] = []
    for runtime, sub in points.groupby("runtime", sort=True):
        style = styles.get(str(runtime), RuntimeStyle("#444", "circle"))
        traces.append(_runtime_trace(sub, str(runtime), x, y, style))
    traces += _throttled_traces(points, x, y)
    traces += _marked_traces(points, x, y)
    traces += _fronts(points, x, axis, y, styles)
    x_type = "log" if _log_scale(points[x.column]) else "linear"
    layout = base_layout(
        title, CHART_HEIGHT,
        margin={"l": 60, "r": 16, "t": 44, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "font": {"size": 11}},
        xaxis=axis_style(title={"text": x.title}, type=x_type),
        yaxis=axis_style(title={"text": axis.title}),
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout)
