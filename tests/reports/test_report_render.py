"""The rendered page: self-contained, complete, escaped, deterministic, written atomically."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pandas as pd
import plotly.offline
import pytest
from report_data import (
    DEVICES,
    FACTS,
    FAILED_ERROR,
    MODELS,
    NO_SENSOR_DEVICE,
    RUN_INFO,
    make_row,
    synthetic_results,
)

import reports.html as report_html
from reports import fmt
from reports.html import render_report, write_report
from reports.sections import SECTIONS, build_registry
from reports.sections.base import (
    RESULT_COLUMNS,
    ReportContext,
    ReportError,
    ReportSection,
    SectionOutput,
)
from reports.sections.pareto import (
    ACCURACY_AXIS,
    NO_EVAL_NOTE,
    ParetoSection,
    build_figure,
    runtime_styles,
)

EVIL_MODEL = "<script>alert(1)</script>"
EVIL_VARIANT = "int8 \"fast\" & 'tiny'"
EVIL_DEVICE = "dev<b>x</b>"
EVIL_ERROR = '<img src=x onerror=alert(2)> failed & "quoted"'
MAX_BYTES = 6 * 1024 * 1024


def figure_ids(page: str) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)


def test_page_is_complete(ctx: ReportContext, tmp_path: Path) -> None:
    path = write_report(ctx, tmp_path / "out" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.count(plotly.offline.get_plotlyjs()) == 1
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1
    assert path.stat().st_size < MAX_BYTES
    for name in (*DEVICES, *MODELS):
        assert html.escape(name) in page
    assert html.escape(FAILED_ERROR.splitlines()[0]) in page
    assert "No suitable implementations" in page  # the traceback tail, under <details>
    assert NO_EVAL_NOTE in page
    assert 'class="section-error"' not in page
    ids = figure_ids(page)
    # Per (device, model) p50, p99, memory and cold start charts, size where accuracy is
    # known (one model), energy per model where a sensor was (one device).
    energy_devices = len(DEVICES) - 1
    expected = len(DEVICES) * (len(MODELS) * 4 + 1) + energy_devices * len(MODELS)
    assert len(ids) == expected == len(set(ids))
    assert f"no power sensor on {NO_SENSOR_DEVICE}: energy not measured" in page
    for section in SECTIONS.values():
        # changes and trends need a history; gate, canary, repeats and operating points data this run lacks.
        if section.name not in ("changes", "trends", "gate", "canary", "repeats", "operating"):
            assert f'id="sec-{section.name}"' in page
    ours = page.replace(plotly.offline.get_plotlyjs(), "")  # the bundle names a topojson CDN
    assert "cdn.plot.ly" not in ours and "src=" not in ours and "https://" not in ours


def test_escaping(tmp_path: Path) -> None:
    df = synthetic_results()
    evil = pd.DataFrame(
        [
            make_row(model=EVIL_MODEL, variant=EVIL_VARIANT, device=EVIL_DEVICE, runtime="ort<&>"),
            make_row(model=EVIL_MODEL, variant="fp32", device=EVIL_DEVICE, runtime="ort<&>",
                     p50_ms=20.0, accuracy=0.8, energy_mj=12.0, throttled=True),
            make_row(model=EVIL_MODEL, variant=EVIL_VARIANT, device=EVIL_DEVICE, runtime="x",
                     status="failed", error=EVIL_ERROR, p50_ms=None, accuracy=None),
        ],
        columns=list(RESULT_COLUMNS),
    )  # fmt: skip
    info = dict(RUN_INFO, id="<r1>", tag="<script>tag</script>", suite="s&'\"", down={EVIL_DEVICE: EVIL_ERROR})
    facts = dict(FACTS, **{EVIL_DEVICE: {"python": "<script>alert(3)</script>"}})
    ctx = ReportContext(pd.concat([df, evil], ignore_index=True), info, facts)
    page = write_report(ctx, tmp_path / "evil.html").read_text(encoding="utf-8")
    for raw in (EVIL_MODEL, EVIL_VARIANT, EVIL_DEVICE, EVIL_ERROR, "<script>tag</script>",
                "<script>alert(3)</script>", "<img src=x", "<r1>", "ort<&>"):  # fmt: skip
        assert raw not in page, raw
    # Outside the one plotly.js script, the per-figure scripts and the filter script, no
    # script tag at all.
    assert len(re.findall(r"<script\b", page)) == 2 + len(figure_ids(page))
    assert html.escape(EVIL_MODEL) in page  # headings and tables
    assert html.escape(EVIL_ERROR) in page
    assert html.escape(EVIL_VARIANT) in page
    # Plotly JSON carries our plotly-escaped text (plotly itself writes <>/ as \\u escapes).
    assert fmt.plot_text(EVIL_VARIANT) in page
    # The evil device measured energy: its energy chart exists, escaped like the latency one.
    titles = [f.layout.title.text for f in ParetoSection().render(ctx).figures]
    assert fmt.plot_text(f"{EVIL_MODEL} on {EVIL_DEVICE}: energy per inference") in titles
    assert "THROTTLED" in page and 'class="badge throttled"' in page


def test_render_is_pure_and_deterministic(results: pd.DataFrame) -> None:
    before = results.copy()
    ctx = ReportContext(results, RUN_INFO, FACTS)
    normalised = ctx.results.copy()
    first, second = render_report(ctx), render_report(ctx)
    assert first == second
    pd.testing.assert_frame_equal(results, before)
    pd.testing.assert_frame_equal(ctx.results, normalised)


def test_no_figures_means_no_plotly(results: pd.DataFrame) -> None:
    failed = results.assign(status="failed", error="board unreachable", p50_ms=None)
    page = render_report(ReportContext(failed, RUN_INFO, FACTS))
    assert "Plotly.newPlot" not in page and len(page) < 200_000
    assert "board unreachable" in page and "No successful jobs" in page
    empty = render_report(ReportContext(results.iloc[0:0], {}, {}))
    assert "This run has no results" in empty and "<script" not in empty


def test_missing_columns_rejected(results: pd.DataFrame) -> None:
    with pytest.raises(ReportError, match="p99_ms"):
        ReportContext(results.drop(columns=["p99_ms"]), RUN_INFO, FACTS)


def test_context_is_read_only(ctx: ReportContext) -> None:
    with pytest.raises(TypeError):
        ctx.run_info["id"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        ctx.facts["rpi5"]["python"] = "x"  # type: ignore[index]


def test_front_labels_and_axes() -> None:
    points = pd.DataFrame(
        [
            make_row(variant="fp32", runtime="ort", p50_ms=10.0, accuracy=0.76),
            make_row(variant="fp16", runtime="ort", p50_ms=6.0, accuracy=0.759),
            make_row(
                variant="slow", runtime="ov", p50_ms=12.0, p90_ms=14.0, accuracy=0.70, std_ms=None
            ),
            make_row(variant="int8", runtime="ov", p50_ms=3.0, accuracy=0.74, p50_ci_lo_ms=2.75, p50_ci_hi_ms=3.5),
        ],
        columns=[*RESULT_COLUMNS, "p50_ci_lo_ms", "p50_ci_hi_ms"],
    )
    ctx = ReportContext(points)
    fig = build_figure(ctx.results, ACCURACY_AXIS, "m on d", runtime_styles(["ort", "ov"]))
    front = fig.data[-1]
    assert front.name == "Pareto front" and front.line.shape == "hv"
    assert list(front.text) == ["int8", "fp16", "fp32"]
    assert list(front.x) == [3.0, 6.0, 10.0]
    ov = next(t for t in fig.data if t.name == "ov")
    # int8 has the p50's interval: its bar; "slow" has none: one-sided from p50 to p90 (never +-std,
    # which for a skewed latency reaches below zero).
    assert list(ov.error_x.array) == [0.5, 2.0]
    assert list(ov.error_x.arrayminus) == [0.25, 0.0]
    assert "customdata[5]" in ov.hovertemplate


def test_registry_order_and_duplicates() -> None:
    orders = [cls.order for cls in SECTIONS.values()]
    assert orders == sorted(orders)
    assert list(SECTIONS) == [
        "summary", "gate", "failures", "canary", "recommend", "changes", "operating", "trends", "pareto", "repeats",
        "results", "facts",
    ]  # fmt: skip

    class Dup(ReportSection):
        name, title, order = "summary", "Again", 99

        def render(self, ctx: ReportContext) -> SectionOutput:
            return SectionOutput()

    with pytest.raises(ReportError, match="summary"):
        build_registry((*SECTIONS.values(), Dup))


def test_section_selection_and_broken_section(
    ctx: ReportContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = render_report(ctx, sections=["facts"])
    assert 'id="sec-facts"' in page and 'id="sec-pareto"' not in page and "<script" not in page
    with pytest.raises(ReportError, match="nope"):
        render_report(ctx, sections=["nope"])

    class Broken(ReportSection):
        name, title, order = "broken", "Broken", 1

        def render(self, ctx: ReportContext) -> SectionOutput:
            raise KeyError("<boom>")

    monkeypatch.setattr(report_html, "SECTIONS", build_registry((*SECTIONS.values(), Broken)))
    page = render_report(ctx)
    assert 'class="section-error"' in page and "&lt;boom&gt;" in page
    assert 'id="sec-results"' in page  # the rest still rendered


def test_atomic_write(ctx: ReportContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")
    write_report(ctx, target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    target.write_text("old", encoding="utf-8")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(ctx, target)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


@pytest.mark.parametrize(
    ("formatter", "value", "expected"),
    [
        (fmt.ms, 12.345, "12.3 ms"), (fmt.ms, 0.4567, "0.457 ms"), (fmt.ms, 1234.0, "1,234 ms"),
        (fmt.ms, None, fmt.MISSING), (fmt.ms, float("nan"), fmt.MISSING),
        (fmt.pct, 0.7613, "76.13 %"), (fmt.mib, 12_000_000, "11.4 MiB"), (fmt.mib, 512, "512 B"),
        (fmt.si, 11_700_000, "11.70 M"), (fmt.si, 1.8e9, "1.80 G"), (fmt.yes_no, False, "no"),
        (fmt.yes_no, None, fmt.MISSING), (fmt.integer, 500.0, "500"), (fmt.per_s, 96, "96.0 /s"),
        (fmt.plain, "a<b", "a&lt;b"), (fmt.plot_text, "\"'&<>", "&#34;&#39;&amp;&lt;&gt;"),
    ],
)  # fmt: skip
def test_formatters(formatter: fmt.Formatter, value: object, expected: str) -> None:
    assert formatter(value) == expected


def test_boards_that_ended_the_run_down_are_listed_with_their_reason(results: pd.DataFrame) -> None:
    info = dict(RUN_INFO, down={"orin-02": "ConnectError: cannot reach 10.0.0.22:22 within 10 s"})
    page = render_report(ReportContext(results, info, FACTS))
    section = page[page.index('id="sec-failures"'):page.index('id="sec-pareto"')]
    assert "1 board(s) ended the run down" in section and "orin-02" in section and "within 10 s" in section
    assert "ended the run down" not in render_report(ReportContext(results, RUN_INFO, FACTS))
