"""The history dashboard: aggregation (pandas only), trend charts, the run-to-run comparison."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from history_data import (
    CONFIGS,
    EVIL_DEVICE,
    EVIL_VARIANT,
    TAG,
    fill_store,
    p50_of,
    result_row,
    runs_frame,
)
from report_data import RUN_INFO, synthetic_results

from harness.store import open as open_store
from reports import fmt
from reports.axes import ACCURACY_AXIS, LATENCY_AXIS
from reports.history import HistoryData, compare_latest, load_history, metric_table, regression_points
from reports.html import render_report
from reports.sections.base import ReportContext, ReportError
from reports.sections.changes import ChangesSection
from reports.sections.trends import REGRESSION_LEGEND, TrendsSection

ORT, INT8, OV, EVIL = CONFIGS


def hand_history(verdicts: pd.DataFrame | None = None) -> HistoryData:
    """Three runs: r1 has a duplicate job, r2 a failed one and a new configuration."""
    rows = [
        result_row("r0", ORT, p50_ms=10.0, accuracy=0.90), result_row("r0", INT8, p50_ms=5.0, accuracy=0.88),
        result_row("r1", ORT, p50_ms=11.0, accuracy=0.90), result_row("r1", ORT, p50_ms=13.0, accuracy=0.90),
        result_row("r1", INT8, p50_ms=5.0, accuracy=0.88),
        result_row("r2", ORT, p50_ms=12.0, accuracy=0.895), result_row("r2", INT8, status="failed"),
        result_row("r2", OV, p50_ms=9.0, accuracy=0.90),
    ]  # fmt: skip
    return HistoryData(TAG, runs_frame(3), pd.DataFrame(rows), verdicts)


def verdict(run: str, config: tuple, metric: str, what: str = "regression", ratio: float = 1.2) -> dict:
    model, variant, device, runtime = config
    return {"candidate": run, "model": model, "variant": variant, "device": device, "runtime": runtime,
            "metric": metric, "verdict": what, "ratio": ratio, "ci_lo": ratio - 0.05, "ci_hi": ratio + 0.05,
            "threshold": 0.05}  # fmt: skip


def test_metric_table_orders_runs_and_takes_medians() -> None:
    table = metric_table(hand_history())
    assert table.index.tolist() == ["r0", "r1", "r2"]  # oldest first though given newest first
    ort = table[("p50_ms", *ORT)]
    assert ort.tolist() == [10.0, 12.0, 12.0]  # r1: median of its two jobs
    int8 = table[("p50_ms", *INT8)]
    assert int8.iloc[:2].tolist() == [5.0, 5.0] and np.isnan(int8.iloc[2])  # failed -> gap
    assert np.isnan(table[("p50_ms", *OV)].iloc[0])  # not run yet
    assert ("energy_mj", *ORT) not in table.columns  # never measured: no line at all


def test_x_is_as_coarse_as_keeps_runs_apart() -> None:
    daily = HistoryData(TAG, runs_frame(3), pd.DataFrame([result_row("r0", ORT, p50_ms=1.0)]))
    assert daily.runs["x"].tolist() == ["2026-11-18", "2026-11-19", "2026-11-20"]
    hourly = HistoryData(TAG, runs_frame(3, spacing_s=3600), pd.DataFrame([result_row("r0", ORT, p50_ms=1.0)]))
    assert hourly.runs["x"].tolist() == ["2026-11-18 11:06", "2026-11-18 12:06", "2026-11-18 13:06"]


def test_regression_points_sit_on_the_regressed_value() -> None:
    verdicts = pd.DataFrame([
        verdict("r2", ORT, "latency_p50"), verdict("r2", ORT, "latency_p90"),  # p90 is not plotted
        verdict("r1", INT8, "latency_p50", "pass", 1.0), verdict("r2", INT8, "accuracy", ratio=-1.0),
    ])  # fmt: skip
    regs = regression_points(hand_history(verdicts))
    # r2's INT8 failed: no value, no marker; the pass is no marker either.
    assert regs[["run", "x", "column", "value"]].to_dict("records") == [
        {"run": "r2", "x": "2026-11-20", "column": "p50_ms", "value": 12.0}
    ]


def test_compare_latest_changes_statuses_and_verdicts() -> None:
    verdicts = pd.DataFrame([verdict("r2", ORT, "latency_p50"), verdict("r1", INT8, "latency_p50")])
    frame = compare_latest(hand_history(verdicts)).set_index(["model", "variant", "device", "runtime"])
    ort, int8, ov = frame.loc[ORT], frame.loc[INT8], frame.loc[OV]
    assert ort["p50_ms_previous"] == 12.0 and ort["p50_ms_latest"] == 12.0 and ort["p50_ms_change"] == 0.0
    assert ort["accuracy_change"] == pytest.approx(-0.5)  # points, not a ratio
    assert ort["p50_ms_verdict"] == "regression" and ort["regressions"] == 1
    assert (int8["in_latest"], int8["ok_latest"]) == (True, False) and np.isnan(int8["p50_ms_latest"])
    assert int8["regressions"] == 0  # r1's verdict belongs to r1, not to the latest run
    assert (ov["in_previous"], ov["in_latest"], ov["ok_latest"]) == (False, True, True)
    assert list(frame.index)[0] == ORT  # regressions first


def test_changes_table_escapes_and_colours_by_verdict_only() -> None:
    evil = (EVIL_DEVICE, EVIL_VARIANT)
    rows = [result_row(r, ("m", evil[1], evil[0], "ort"), p50_ms=p) for r, p in (("r0", 10.0), ("r1", 20.0))]
    history = HistoryData(TAG, runs_frame(2), pd.DataFrame(rows))
    ctx = ReportContext(synthetic_results(), RUN_INFO, history=history)
    out = ChangesSection().render(ctx).html
    assert EVIL_DEVICE not in out and EVIL_VARIANT not in out and html.escape(EVIL_DEVICE) in out
    assert "+100.0 %" in out and 'title="previous: 10.0 ms"' in out
    assert 'class="num regression"' not in out  # +100% but no gate verdict: no colour
    one = HistoryData(TAG, runs_frame(1), pd.DataFrame(rows[:1]))
    assert "nothing to compare yet" in ChangesSection().render(ReportContext(synthetic_results(), history=one)).html


def test_trend_figures_rows_lines_and_markers() -> None:
    verdicts = pd.DataFrame([verdict("r2", ORT, "latency_p50"), verdict("r2", ORT, "accuracy", ratio=-0.5)])
    ctx = ReportContext(synthetic_results(), RUN_INFO, history=hand_history(verdicts))
    figs = TrendsSection().render(ctx).figures
    assert len(figs) == 1  # one (device, model)
    fig = figs[0]
    rows = [fig.layout[f"yaxis{'' if i == 0 else i + 1}"].title.text for i in range(2)]
    assert rows == [LATENCY_AXIS.title, ACCURACY_AXIS.title]  # only measured metrics get a row
    lines = [t for t in fig.data if t.meta.get("role") != "regression"]
    assert len(lines) == 2 * 3  # (p50, accuracy) x (ORT, INT8, OV)
    assert sum(t.showlegend for t in lines) == 3
    marks = [t for t in fig.data if t.meta.get("role") == "regression"]
    assert [(t.name, list(t.x), list(t.y), t.yaxis) for t in marks] == [
        (REGRESSION_LEGEND, ["2026-11-20"], [12.0], "y"),
        (REGRESSION_LEGEND, ["2026-11-20"], [pytest.approx(89.5)], "y2"),
    ]
    assert [t.showlegend for t in marks] == [True, False]
    assert {t.meta["runtime"] for t in fig.data} == {"onnxruntime", "openvino"}


def test_trend_values_go_out_as_float32_typed_arrays() -> None:
    ctx = ReportContext(synthetic_results(), RUN_INFO, history=hand_history())
    spec = json.loads(TrendsSection().render(ctx).figures[0].to_json())
    ys = [t["y"] for t in spec["data"]]
    assert all(isinstance(y, dict) and y["dtype"] == "f4" for y in ys)
    assert spec["data"][0]["x"] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert len(json.dumps(spec["layout"]["template"])) < 200  # no 6.5 kB named template per figure


def test_history_sections_absent_from_a_run_page() -> None:
    ctx = ReportContext(synthetic_results(), RUN_INFO)
    assert TrendsSection().render(ctx).empty and ChangesSection().render(ctx).empty
    page = render_report(ctx)
    assert 'id="sec-trends"' not in page and "Edge Harness run" in page


def test_bad_history_input() -> None:
    with pytest.raises(ReportError, match="no runs"):
        HistoryData(TAG, runs_frame(0), pd.DataFrame([result_row("r0", ORT)]))
    with pytest.raises(ReportError, match="p99_ms"):
        HistoryData(TAG, runs_frame(1), pd.DataFrame([result_row("r0", ORT)]).drop(columns="p99_ms"))


def test_load_history_from_a_real_store(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    runs = fill_store(db, 5, slow_from=3, fail=(4, 0))
    fill_store(db, 1, tag="other")
    with open_store(db) as store:
        full = load_history(store, TAG)
        until = load_history(store, TAG, until=runs[3])
        with pytest.raises(ReportError, match="does not have tag"):
            load_history(store, "other", until=runs[0])
    assert full.runs["run"].tolist() == runs and full.latest == runs[-1] and full.previous == runs[-2]
    assert until.runs["run"].tolist() == runs[:4] and set(until.results["run"]) == set(runs[:4])
    table = metric_table(full)
    assert table[("p50_ms", *INT8)].tolist() == [p50_of(1, n, 3) for n in range(5)]
    assert np.isnan(table[("p50_ms", *ORT)].iloc[4])  # the failed job
    regs = regression_points(full)
    assert sorted(regs["metric"]) == ["latency_p50", "latency_p90", "latency_p99"]  # p90 has a row now
    assert set(regs["run"]) == {runs[3]} and set(regs["variant"]) == {INT8[1]}


def test_dashboard_page_is_deterministic_escaped_and_compact(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    runs = fill_store(db, 4, slow_from=2)
    with open_store(db) as store:
        history = load_history(store, TAG)
        ctx = ReportContext(store.results(run=runs[-1]), store.run_info(runs[-1]), history=history)
    page = render_report(ctx)
    assert page == render_report(ctx)
    assert page.startswith("<!DOCTYPE html>") and f"Edge Harness dashboard: tag {TAG}, 4 run(s)" in page
    for section in ("changes", "trends", "pareto"):
        assert f'id="sec-{section}"' in page
    for raw in (EVIL_DEVICE, EVIL_VARIANT):
        assert raw not in page
    # The trend legend: plotly-escaped, then JSON-encoded by plotly (the dot becomes \u00b7).
    assert json.dumps(fmt.plot_text(f"{EVIL_VARIANT} \u00b7 onnxruntime"))[1:-1] in page
    assert len(re.findall(r"<script\b", page)) == 2 + page.count('class="plotly-graph-div"')


def test_trend_bytes_per_point_stay_small() -> None:
    # 120 runs x 30 configurations x 5 metrics: the trend section must not cost more than
    # ~25 bytes a point (x as a short date, y as float32), or a year of 120 would not fit.
    rng = np.random.default_rng(0)
    configs = [("m", f"v{i}", f"d{i % 3}", "ort") for i in range(30)]
    runs = runs_frame(120)
    rows = pd.DataFrame([
        result_row(r, c, p50_ms=v, p99_ms=v * 1.3, energy_mj=v * 2, peak_rss_mb=100 + v, accuracy=0.9)
        for r in runs["run"] for c, v in zip(configs, rng.uniform(1, 50, len(configs)), strict=True)
    ])  # fmt: skip
    ctx = ReportContext(synthetic_results(), RUN_INFO, history=HistoryData(TAG, runs, rows))
    figures = TrendsSection().render(ctx).figures
    points = 120 * 30 * 5  # the five metrics filled in (no p90, no cold start: no rows for them)
    size = sum(len(f.to_json()) for f in figures)
    assert size / points < 25, size / points
    assert all(isinstance(f, go.Figure) for f in figures)
