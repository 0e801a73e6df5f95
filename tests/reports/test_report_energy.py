"""Energy per inference as a Pareto axis, average power in the hover, the throttled marker."""

from __future__ import annotations

import json
import re

import pandas as pd
import plotly.graph_objects as go
import pytest
from report_data import (
    DEVICES,
    FACTS,
    NO_SENSOR_DEVICE,
    RUN_INFO,
    THROTTLED_JOBS,
    make_row,
)

from reports import fmt
from reports.html import render_report
from reports.sections.base import RESULT_COLUMNS, ReportContext, throttled_mask
from reports.axes import COLD_START_AXIS
from reports.sections.pareto import (
    ACCURACY_AXIS,
    ENERGY_AXIS,
    LATENCY_AXIS,
    MEMORY_AXIS,
    P99_AXIS,
    SIZE_AXIS,
    THROTTLED_LEGEND,
    ParetoSection,
    build_figure,
    runtime_styles,
)
from reports.sections.results import COLUMNS, THROTTLED_BADGE, ResultsSection
from reports.sections.summary import SummarySection

SENSOR_DEVICE = next(d for d in DEVICES if d != NO_SENSOR_DEVICE)


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))


def figures_by_device(ctx: ReportContext) -> dict[str, list[go.Figure]]:
    """The Pareto section's figures, grouped under the device heading they follow."""
    out: dict[str, list[go.Figure]] = {}
    device = None
    for block in ParetoSection().render(ctx).blocks:
        if isinstance(block, str) and block.startswith("<h3>"):
            device = block.removeprefix("<h3>").removesuffix("</h3>")
            out[device] = []
        elif isinstance(block, go.Figure):
            out[device].append(block)
    return out


def is_energy(fig: go.Figure) -> bool:
    return fig.layout.xaxis.title.text == ENERGY_AXIS.title


def trace(fig: go.Figure, name: str) -> go.Scatter:
    return next(t for t in fig.data if t.name == name)


def x_titles(figs: list[go.Figure]) -> list[str]:
    return [f.layout.xaxis.title.text for f in figs]


def test_energy_chart_exactly_where_measured(ctx: ReportContext) -> None:
    figs = figures_by_device(ctx)
    assert sorted(figs) == sorted(DEVICES)
    # resnet18 has accuracy (a size chart too); yolo-det has none (size is its y already).
    # Every job measured its cold start (load + first inference): a chart of its own.
    with_energy = [LATENCY_AXIS.title, P99_AXIS.title, ENERGY_AXIS.title, MEMORY_AXIS.title, COLD_START_AXIS.title]
    assert x_titles(figs[SENSOR_DEVICE]) == [*with_energy, SIZE_AXIS.title, *with_energy]
    without = [t for t in with_energy if t != ENERGY_AXIS.title]
    assert x_titles(figs[NO_SENSOR_DEVICE]) == [*without, SIZE_AXIS.title, *without]
    page = render_report(ctx, sections=["pareto"])
    assert page.count('class="plotly-graph-div"') == 11 + 9
    # Same runtime styles in both kinds of chart.
    latency, energy = figs[SENSOR_DEVICE][0], figs[SENSOR_DEVICE][2]
    assert is_energy(energy) and not is_energy(latency)
    for name in ("onnxruntime", "openvino"):
        assert trace(latency, name).marker.color == trace(energy, name).marker.color
        assert trace(latency, name).marker.symbol == trace(energy, name).marker.symbol


def test_no_sensor_note_once_per_device(ctx: ReportContext) -> None:
    page = render_report(ctx, sections=["pareto"])
    assert page.count(f"no power sensor on {NO_SENSOR_DEVICE}: energy not measured") == 1
    assert page.count("no power sensor on") == 1
    assert page.count("energy not measured") == 1


def test_partial_energy_note_names_models_once() -> None:
    rows = [make_row(device="pool<1>", model=m, variant=v, runtime="ort", p50_ms=p,
                     energy_mj=e, avg_power_w=None if e is None else 3.0)
            for m, e in (("a", 20.0), ("b", None), ("c", None))
            for v, p in (("fp32", 10.0), ("int8", 4.0))]  # fmt: skip
    page = render_report(ReportContext(frame(*rows)), sections=["pareto"])
    assert page.count("energy not measured on pool&lt;1&gt; for b, c: no energy chart") == 1
    assert "no power sensor" not in page and "pool<1>" not in page
    # Per model p50, p99, peak memory, cold start and size; energy for "a" only.
    assert page.count('class="plotly-graph-div"') == 3 * 5 + 1


def test_device_with_only_failed_jobs_gets_no_energy_note(results: pd.DataFrame) -> None:
    dead = frame(make_row(device="dead", model="m", runtime="ort", status="failed", error="x"))
    page = render_report(ReportContext(pd.concat([results, dead], ignore_index=True)))
    assert 'class="section-error"' not in page
    assert "no power sensor on dead" not in page and "No successful jobs for this model" in page


KNOWN = (
    # variant, p50 ms, energy mJ, accuracy: a is fast but power hungry, d frugal but poor.
    ("a", 3.0, 40.0, 0.74),
    ("b", 6.0, 20.0, 0.759),
    ("c", 10.0, 25.0, 0.76),
    ("d", 12.0, 10.0, 0.70),
)


def known_points(**overrides: object) -> pd.DataFrame:
    rows = [make_row(variant=v, runtime="ort", p50_ms=p, energy_mj=e, accuracy=acc,
                     avg_power_w=e / p, **overrides)
            for v, p, e, acc in KNOWN]  # fmt: skip
    return ReportContext(frame(*rows)).results


def test_energy_front_known_answer() -> None:
    points, styles = known_points(), runtime_styles(["ort"])
    energy = build_figure(points, ACCURACY_AXIS, "m on d", styles, x=ENERGY_AXIS)
    front = trace(energy, "Pareto front")
    assert list(front.text) == ["d", "b", "c"] and list(front.x) == [10.0, 20.0, 25.0]
    assert list(front.y) == pytest.approx([70.0, 75.9, 76.0])
    assert energy.data[0].error_x.array is None  # no made-up error bars on energy
    latency = build_figure(points, ACCURACY_AXIS, "m on d", styles)
    assert list(trace(latency, "Pareto front").text) == ["a", "b", "c"]
    # Without an eval set, energy and size are both minimised.
    by_size = build_figure(points.assign(size_bytes=[9e6, 5e6, 1e6, 8e6]), SIZE_AXIS,
                           "m on d", styles, x=ENERGY_AXIS)  # fmt: skip
    assert list(trace(by_size, "Pareto front").text) == ["d", "b", "c"]


def test_energy_chart_in_section_uses_size_without_eval_set() -> None:
    sizes = (9e6, 5e6, 1e6, 8e6)
    rows = frame(*[make_row(variant=v, runtime="ort", p50_ms=p, energy_mj=e, accuracy=None,
                            size_bytes=size)
                   for (v, p, e, _), size in zip(KNOWN, sizes, strict=True)])  # fmt: skip
    figs = ParetoSection().render(ReportContext(rows)).figures
    # p50, p99, energy, memory, cold start: size is on y, so there is no size-vs-size chart.
    assert [f.layout.yaxis.title.text for f in figs] == [SIZE_AXIS.title] * 5
    assert [is_energy(f) for f in figs] == [False, False, True, False, False]
    assert figs[2].layout.title.text.endswith(
        "energy per inference (no eval set: accuracy unknown)"
    )


def test_hover_shows_energy_power_and_board() -> None:
    points = known_points().assign(board="orin-03")
    points.loc[points["variant"] == "a", "board"] = points["device"]
    fig = build_figure(points, ACCURACY_AXIS, "t", runtime_styles(["ort"]), x=ENERGY_AXIS)
    data = {row[0]: row for row in trace(fig, "ort").customdata}
    assert data["b"][7:9] == ["20.0 mJ", "3.33 W"]
    assert "energy: %{customdata[7]}" in fig.data[0].hovertemplate
    assert "avg power: %{customdata[8]}" in fig.data[0].hovertemplate
    assert data["b"][9] == "<br>board: orin-03" and data["a"][9] == ""  # a's board is its device


def test_throttled_points_ringed_in_figure_json() -> None:
    points = known_points().assign(throttled=pd.array([True, None, False, True], dtype="boolean"))
    fig = build_figure(points, ACCURACY_AXIS, "t", runtime_styles(["ort"]), x=ENERGY_AXIS)
    spec = json.loads(fig.to_json())
    rings = [t for t in spec["data"] if t["name"] == THROTTLED_LEGEND]
    assert len(rings) == 1
    assert sorted(zip(rings[0]["x"], rings[0]["y"])) == [(10.0, 70.0), (40.0, 74.0)]  # d, a
    assert rings[0]["marker"]["symbol"] == "circle-open" and rings[0]["hoverinfo"] == "skip"
    hover = {row[0]: row[9] for row in trace(fig, "ort").customdata}
    assert "THROTTLED" in hover["a"] and "THROTTLED" in hover["d"]
    assert "THROTTLED" not in hover["b"] + hover["c"]  # unknown (None) is not marked
    unthrottled = build_figure(known_points(), ACCURACY_AXIS, "t", runtime_styles(["ort"]))
    assert THROTTLED_LEGEND not in [t.name for t in unthrottled.data]


def test_every_chart_of_a_throttled_job_carries_the_ring(ctx: ReportContext) -> None:
    figs = figures_by_device(ctx)
    for device, model, variant, _ in THROTTLED_JOBS:
        charts = [f for f in figs[device] if f.layout.title.text.startswith(f"{model} on ")]
        assert charts and all(THROTTLED_LEGEND in [t.name for t in f.data] for f in charts)
    assert THROTTLED_LEGEND in render_report(ctx, sections=["pareto"])


def table_rows(page: str) -> list[list[str]]:
    body = page[page.index("<tbody>"):]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in rows]


def test_results_table_badge_and_energy_columns(ctx: ReportContext) -> None:
    html = ResultsSection().render(ctx).html
    assert html.count(THROTTLED_BADGE) == len(THROTTLED_JOBS)
    assert html.count('<tr class="throttled" ') == len(THROTTLED_JOBS)  # then its data-* attributes
    col = {c.source: i for i, c in enumerate(COLUMNS)}
    rows = [r for r in table_rows(html) if len(r) == len(COLUMNS)]
    for r in rows:
        measured = r[col["device"]] != NO_SENSOR_DEVICE and r[col["status"]] == "ok"
        assert r[col["energy_mj"]].endswith(" mJ") == measured
        assert r[col["avg_power_w"]].endswith(" W") == measured
        if not measured:  # NaN renders as the page's one "no value" mark, never "nan"
            assert r[col["energy_mj"]] == r[col["avg_power_w"]] == fmt.MISSING
    assert ">nan<" not in html.lower()
    assert {r[col["throttled"]] for r in rows} == {THROTTLED_BADGE, "no", fmt.MISSING}


def test_summary_counts_throttled(ctx: ReportContext) -> None:
    html = SummarySection().render(ctx).html
    assert f"{len(THROTTLED_JOBS)} of {len(ctx.ok)}</span> ok result(s)" in html
    calm = ReportContext(ctx.results.assign(throttled=False), RUN_INFO, FACTS)
    assert "Throttled" not in SummarySection().render(calm).html


def test_throttled_coerced_to_nullable_boolean() -> None:
    raw = [True, None, 0, 1, "true", "False", float("nan"), "maybe"]
    df = frame(*[make_row(variant=str(i), throttled=v) for i, v in enumerate(raw)])
    got = ReportContext(df).results["throttled"]
    assert str(got.dtype) == "boolean"
    assert got.astype(object).where(got.notna(), None).tolist() == [
        True, None, False, True, True, False, None, None,
    ]  # fmt: skip
    assert throttled_mask(ReportContext(df).results).tolist() == [
        True, False, False, True, True, False, False, False,
    ]  # fmt: skip
