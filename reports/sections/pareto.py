"""Pareto fronts per device and model: accuracy against latency, energy, memory and size.

Why per (device, model): compression trades accuracy for speed within one model on one
board; mixing models or boards in a chart makes the front meaningless. Each point is one
(variant, runtime) job; the front spans the board's runtimes (each runtime's own front is
one legend click, or one filter click, away; see ``reports.fronts``).

Why five charts per model, side by side in a grid: "fast" means p50 to a dashboard and
p99 to a real-time pipeline, a battery board pays per millijoule, a small board runs out
of memory, and a download budget counts megabytes. The same points sit on all five x axes
(:data:`reports.axes.X_AXES`) with accuracy on y, so a variant that wins one and loses
another is visible at a glance. A chart whose quantity nobody measured (no power sensor,
no RSS) is left out, with one note per device for energy. A model without an eval set has
no accuracy: its charts put artifact size on y instead (both minimised) and say so, and
the size-vs-size chart is dropped. A point measured while the board throttled is ringed.

Cold start (model load + first inference) is an x axis of its own: a serverless or
on-demand deployment pays it on every start, and it ranks variants differently from the
steady-state p50 (a TensorRT engine loads slowly and runs fast). It is drawn where it was
measured; older runs have none. The board canary (``reports.canary``) is not a
candidate and never enters a chart or a front.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from reports import fidelity, fmt
from reports.axes import (
    ACCURACY_AXIS,
    COLD_START_AXIS,
    ENERGY_AXIS,
    LATENCY_AXIS,
    MEMORY_AXIS,
    P99_AXIS,
    SIZE_AXIS,
    X_AXES,
    Axis,
    quality_axis,
)
from reports.filters import data_attrs
from reports.fronts import THROTTLED_LEGEND, RuntimeStyle, build_figure, runtime_styles
from reports.sections.base import Block, ReportContext, ReportSection, SectionOutput

__all__ = [
    "ACCURACY_AXIS",
    "ENERGY_AXIS",
    "LATENCY_AXIS",
    "MEMORY_AXIS",
    "NO_EVAL_NOTE",
    "P99_AXIS",
    "SIZE_AXIS",
    "THROTTLED_LEGEND",
    "ParetoSection",
    "build_figure",
    "no_energy_note",
    "runtime_styles",
]

NO_EVAL_NOTE = "no eval set: accuracy unknown"
#: x axes drawn only where something was measured; p50 and p99 are always attempted.
_OPTIONAL_X = frozenset({ENERGY_AXIS.column, MEMORY_AXIS.column, COLD_START_AXIS.column, SIZE_AXIS.column})
_INTRO = (
    '<p class="note">Each point is one (variant, runtime) job, and one per power mode where the suite swept '
    "them (labelled variant @ mode); accuracy is on y, and each chart "
    "of a model puts another cost on x: p50 and p99 latency, energy per inference (where the "
    "board measured power), peak memory, cold start (model load + first inference, where "
    "measured) and artifact size. The dashed step line is the "
    "Pareto front over every runtime of the board, its points labelled with the variant; "
    "each runtime's own front is in the legend. Error bars: &plusmn;1 std of latency, or "
    "p50&rarr;p90 where std is missing. A red ring marks a job during which the board "
    "throttled or changed clocks, an orange diamond one whose window was unstable or whose "
    "board was busy (noisy); the hover says why. The board canary is not plotted, nor a variant marked "
    "degraded (its outputs past the suite's fidelity limit against the reference model's) unless its measured "
    "accuracy is within the gate's accuracy rule of the reference's; a note names each one left out.</p>"
)


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
    """Per device and model: accuracy (or size) vs each cost in :data:`X_AXES`."""

    name = "pareto"
    title = "Pareto fronts"
    order = 20

    def render(self, ctx: ReportContext) -> SectionOutput:
        """A filterable block per device, a heading and a grid of charts per model."""
        ok, left_out = ctx.candidates, ctx.left_out
        if ok.empty:
            return SectionOutput(('<p class="note">No successful jobs to plot.</p>',
                                  *filter(None, [fidelity.left_out_note(left_out)])))
        measured = ctx.measured
        styles = runtime_styles(list(measured["runtime"]))
        blocks: list[Block] = [_INTRO]
        models_by_device = measured.groupby("device", sort=True)["model"].unique()
        for device, models in models_by_device.items():
            device = str(device)
            blocks += [f'<div class="group"{data_attrs(device=device)}>', f"<h3>{fmt.esc(device)}</h3>"]
            on_device = ok[ok["device"] == device]
            note = no_energy_note(device, on_device)
            if note:
                blocks.append(note)
            dropped = fidelity.left_out_note(left_out[left_out["device"] == device], f" on {device}")
            if dropped:
                blocks.append(dropped)
            for model in sorted(models):
                group = on_device[on_device["model"] == model]
                dropped_here = bool(((left_out["device"] == device) & (left_out["model"] == model)).any())
                blocks.extend(_model_blocks(group, device, str(model), styles, dropped_here))
            blocks.append("</div>")
        return SectionOutput(tuple(blocks))


def _model_blocks(
    group: pd.DataFrame, device: str, model: str, styles: Mapping[str, RuntimeStyle], dropped: bool = False
) -> list[Block]:
    """The model's heading, then a grid with one chart per measured x quantity (``dropped``: some
    of the model's results on the device were left out as degraded)."""
    blocks: list[Block] = [
        f'<div class="group"{data_attrs(device=device, model=model)}>',
        f"<h4>{fmt.esc(model)}</h4>",
    ]
    if group.empty:
        text = ("Every successful job of this model is left out as degraded (see the note above)." if dropped
                else "No successful jobs for this model.")
        return [*blocks, f'<p class="note">{text}</p>', "</div>"]
    timed = group[np.isfinite(group["p50_ms"])]
    quality = quality_axis(timed)  # the task's metric where the model has a task, else accuracy
    has_accuracy = bool(np.isfinite(timed[quality.column]).any())
    axis = quality if has_accuracy else SIZE_AXIS
    suffix = "" if has_accuracy else f" ({NO_EVAL_NOTE})"
    blocks.append('<div class="chart-grid">')
    for x in X_AXES:
        if x.column == axis.column:
            continue  # size against size says nothing
        if x.column in _OPTIONAL_X and not np.isfinite(group[x.column]).any():
            continue
        where = f"{model} on {device}"
        title = f"{where}: {x.heading}{suffix}" if x.heading else f"{where}{suffix}"
        notes = [NO_EVAL_NOTE] if x is LATENCY_AXIS and not has_accuracy else []
        blocks += _chart_blocks(group, x, axis, title, styles, notes)
    return [*blocks, "</div>", "</div>"]


def _chart_blocks(
    group: pd.DataFrame,
    x: Axis,
    axis: Axis,
    title: str,
    styles: Mapping[str, RuntimeStyle],
    notes: list[str],
) -> list[Block]:
    """One grid cell: a note on what the chart leaves out (if anything), then the chart."""
    points = group[np.isfinite(group[x.column]) & np.isfinite(group[axis.column])]
    skipped = len(group) - len(points)
    if skipped:
        notes = [*notes, f"{skipped} job(s) without {x.name} or {axis.column} not shown"]
    note = f'<p class="note">{fmt.esc("; ".join(notes))}</p>' if notes else ""
    device, model = str(group["device"].iloc[0]), str(group["model"].iloc[0])
    if points.empty:
        return [f'<div class="cell"{data_attrs(device=device, model=model)}>{note}</div>']
    attrs = data_attrs(device=device, model=model, runtimes=points["runtime"])
    return [f'<div class="chart"{attrs}>{note}', build_figure(points, axis, title, styles, x=x), "</div>"]
