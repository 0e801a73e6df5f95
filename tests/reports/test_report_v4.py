"""Schema v4 on the page: noisy/unstable marks, cold start as its own axis, repeats, the
board canary (kept out of fronts, picks and comparisons; drawn per board), the gate's
verdicts on the run page and the p90 trend row. Stores are filled through the real Store
API (``v4_data``); hand-made frames cover older runs that lack the new columns."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from history_data import CONFIGS, EVIL_DEVICE, TAG
from report_data import RUN_INFO, make_row, synthetic_results
from v4_data import (
    BOARDS,
    CANARY_P50,
    EVIL_NOTE,
    NOISY_REASON,
    REPEAT_P50S,
    UNSTABLE_REASON,
    canary_drift,
    fill_v4_store,
)

from harness.cli import main as harness_main
from harness.store import open as open_store
from reports import fmt, load_context
from reports.axes import COLD_START_AXIS, P90_AXIS, TREND_AXES
from reports.budget import Budget
from reports.canary import CANARY_NAME, canary_pairs
from reports.fronts import MARKED_LEGEND
from reports.history import canary_table, compare_latest, metric_table, regression_points
from reports.html import render_report
from reports.sections.base import RESULT_COLUMNS, ReportContext, ReportError
from reports.sections.canary import CanarySection
from reports.sections.gate import GateSection
from reports.sections.pareto import ParetoSection
from reports.sections.recommend import RecommendSection
from reports.sections.repeats import HEADLINE_NAME, RepeatsSection
from reports.sections.results import COLUMNS, ResultsSection
from reports.sections.summary import SummarySection
from reports.sections.trends import CANARY_TITLE, TrendsSection

ORT, INT8, OV, EVIL = CONFIGS
NIGHTS, SLOW = 4, 3


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    db = tmp_path_factory.mktemp("v4") / "h.db"
    return db, fill_v4_store(db, NIGHTS, slow_from=SLOW)


@pytest.fixture(scope="module")
def run_ctx(store_path: tuple[Path, list[str]]) -> ReportContext:
    db, runs = store_path
    with open_store(db) as store:
        return load_context(store, runs[-1], budget_ms=100.0)


@pytest.fixture(scope="module")
def dash_ctx(store_path: tuple[Path, list[str]]) -> ReportContext:
    db, runs = store_path
    with open_store(db) as store:
        return load_context(store, runs[-1], history_tag=TAG)


def table_rows(block: str) -> list[list[str]]:
    body = block[block.index("<tbody>"):]
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body)]


def hover_rows(fig) -> dict[tuple[str, str], list[str]]:  # noqa: ANN001
    """(variant, runtime) -> hover fields of every point trace of a Pareto figure."""
    return {(row[0], row[1]): list(row) for t in fig.data if (t.meta or {}).get("role") == "points"
            for row in t.customdata}  # fmt: skip


# -- 1. marks -----------------------------------------------------------------------------


def test_marks_badged_in_results_with_escaped_reason(run_ctx: ReportContext) -> None:
    out = ResultsSection().render(run_ctx).html
    assert f'<span class="badge unstable" title="{fmt.esc("unstable: " + UNSTABLE_REASON)}">unstable</span>' in out
    assert f'<span class="badge noisy" title="{fmt.esc("noisy: " + NOISY_REASON)}">noisy</span>' in out
    assert UNSTABLE_REASON not in out and "<script>" not in out
    assert out.count('<tr class="marked" ') == 2  # then its data-* attributes


def test_summary_counts_marks_with_reasons_in_the_title(run_ctx: ReportContext) -> None:
    out = SummarySection().render(run_ctx).html
    assert ">1 result unstable, 1 noisy</span> (of " in out
    title = re.search(r'<span class="marks" title="([^"]*)">', out).group(1)
    assert html.unescape(title).startswith("unstable: ") and UNSTABLE_REASON in html.unescape(title)
    assert NOISY_REASON in html.unescape(title) and "<script>" not in out
    calm = run_ctx.results.assign(noisy=None, unstable="  ")  # blank is no mark
    assert "Marks" not in SummarySection().render(ReportContext(calm, RUN_INFO)).html


def test_marks_in_pareto_hover_and_ring(run_ctx: ReportContext) -> None:
    figs = ParetoSection().render(run_ctx).figures
    orin = [f for f in figs if f.layout.title.text.startswith("resnet18 on orin")]
    hover = hover_rows(orin[0])
    assert f"<b>UNSTABLE</b>: {fmt.plot_text(UNSTABLE_REASON)}" in hover[("fp32", "onnxruntime")][9]
    assert f"<b>NOISY</b>: {fmt.plot_text(NOISY_REASON)}" in hover[("fp32", "openvino")][9]
    assert "UNSTABLE" not in hover[("int8", "onnxruntime")][9] + hover[("fp32", "openvino")][9]
    assert "NOISY" not in hover[("int8", "onnxruntime")][9] + hover[("fp32", "onnxruntime")][9]
    for fig in orin:
        rings = [t for t in fig.data if t.name == MARKED_LEGEND]
        assert sorted(t.meta["runtime"] for t in rings) == ["onnxruntime", "openvino"]
        assert [t.showlegend for t in rings] == [True, False] and all(t.hoverinfo == "skip" for t in rings)
    page = render_report(run_ctx)
    assert UNSTABLE_REASON not in page and NOISY_REASON not in page


# -- 2. cold start ----------------------------------------------------------------------------


def test_cold_start_is_an_axis_and_in_table_and_hover(run_ctx: ReportContext) -> None:
    res = run_ctx.results.set_index(["model", "variant", "device", "runtime"])
    assert res.loc[OV, COLD_START_AXIS.column] == pytest.approx(2.5 + 8.0 / 1e3)
    assert np.isnan(res.loc[EVIL, COLD_START_AXIS.column])  # no load time stored: no cold start
    figs = ParetoSection().render(run_ctx).figures
    cold = [f for f in figs if f.layout.xaxis.title.text == COLD_START_AXIS.title]
    assert [f.layout.title.text for f in cold] == ["resnet18 on orin: cold start (load + first inference)"]
    assert sorted(cold[0].data[-1].x) == pytest.approx([0.52, 0.945])  # front: int8 fastest start, fp32
    hover = hover_rows(cold[0])
    assert hover[("fp32", "openvino")][14] == ("<br>cold start: 2.51 s (model load 2.50 s + first inference "
                                              "8.00 ms)<br>engine build: 31.5 s (once, then cached)")  # fmt: skip
    assert hover[("fp32", "onnxruntime")][14].count("<br>") == 1  # no engine build
    rows = {(r[1], r[2], r[3]): r for r in table_rows(ResultsSection().render(run_ctx).html) if len(r) == len(COLUMNS)}
    col = {c.source: i for i, c in enumerate(COLUMNS)}
    ov = rows[("resnet18", "fp32", "openvino")]
    assert (ov[col["load_s"]], ov[col["first_infer_ms"]], ov[col["cold_start_s"]], ov[col["engine_build_s"]]) == (
        "2.50 s", "8.00 ms", "2.51 s", "31.5 s")  # fmt: skip
    evil = next(r for k, r in rows.items() if k[0] == "resnet18" and k[2] == "onnxruntime" and "fast" in k[1])
    assert evil[col["cold_start_s"]] == evil[col["engine_build_s"]] == fmt.MISSING


def test_older_frames_without_the_new_columns_still_render() -> None:
    old = synthetic_results().drop(columns=["load_s"]).assign(load_s=None)  # an old run: NULL cold start
    assert not {"noisy", "unstable", "repeats", "engine_build_s", "started"} & set(old.columns)
    ctx = ReportContext(old, RUN_INFO, budget=Budget(latency_ms=30.0))
    page = render_report(ctx)
    assert 'class="section-error"' not in page and COLD_START_AXIS.title not in page
    assert "Marks" not in SummarySection().render(ctx).html and 'id="sec-canary"' not in page
    assert 'id="sec-repeats"' not in page and 'id="sec-gate"' not in page


# -- 3. repeats -------------------------------------------------------------------------------


def test_p50_says_median_of_repeats_with_ci(run_ctx: ReportContext) -> None:
    p50 = 20.0 * 1.3
    lo, hi = p50 * min(REPEAT_P50S), p50 * max(REPEAT_P50S)
    detail = f" (median of 5 repeats) [95% CI {fmt.interval(lo, hi)}]"
    out = ResultsSection().render(run_ctx).html
    assert f'<td class="num" title="p50{detail}">{fmt.ms(p50 * 1.01)}</td>' in out
    figs = ParetoSection().render(run_ctx).figures
    hover = hover_rows(next(f for f in figs if f.layout.title.text == "resnet18 on orin"))
    assert hover[("int8", "onnxruntime")][13] == detail
    assert hover[("fp32", "onnxruntime")][13] == f" [95% CI {fmt.interval(9.7, 10.4)}]"  # one window: its CI only
    assert "p50: %{customdata[2]}%{customdata[13]}" in figs[0].data[0].hovertemplate


def test_repeat_strip_per_configuration(run_ctx: ReportContext) -> None:
    out = RepeatsSection().render(run_ctx)
    (fig,) = out.figures
    assert fig.layout.title.text == "resnet18 on orin: p50 of each repeat"
    reps = next(t for t in fig.data if t.meta["role"] == "repeats")
    assert sorted(reps.x) == pytest.approx(sorted(26.0 * f for f in REPEAT_P50S))
    assert set(reps.y) == {"int8 \u00b7 onnxruntime"} and list(reps.marker.symbol).count("x") == 1
    head = next(t for t in fig.data if t.name == HEADLINE_NAME)
    assert list(head.x) == pytest.approx([26.0 * 1.01])
    assert 'data-device="orin" data-model="resnet18"' in out.html
    assert RepeatsSection().render(ReportContext(run_ctx.results, RUN_INFO)).empty  # repeats not loaded


# -- 4. canary ----------------------------------------------------------------------------------


def test_canary_left_out_of_fronts_picks_and_comparison(run_ctx: ReportContext, dash_ctx: ReportContext) -> None:
    assert (run_ctx.results["model"] == CANARY_NAME).sum() == 2 * len(BOARDS)
    pareto = ParetoSection().render(run_ctx)
    titles = [f.layout.title.text for f in pareto.figures]
    assert titles and not any(CANARY_NAME in t for t in titles)
    assert f"<h4>{CANARY_NAME}</h4>" not in pareto.html and f'data-model="{CANARY_NAME}"' not in pareto.html
    picks = RecommendSection().render(run_ctx).html
    assert CANARY_NAME not in picks and picks.count("<tr data-device") == len(BOARDS)
    history = dash_ctx.history
    assert CANARY_NAME in set(history.results["model"])
    assert CANARY_NAME not in set(compare_latest(history)["model"])
    assert CANARY_NAME not in set(metric_table(history).columns.get_level_values("model"))
    assert CANARY_NAME not in set(regression_points(history)["model"])
    # The results table keeps the canary's rows, greyed.
    assert ResultsSection().render(run_ctx).html.count('class="canary" data-device') == 2 * len(BOARDS)


def test_canary_section_first_last_and_ratio(run_ctx: ReportContext) -> None:
    out = CanarySection().render(run_ctx).html
    rows = {html.unescape(r[0]): r for r in table_rows(out)}
    assert set(rows) == set(BOARDS)
    drift = canary_drift("orin", NIGHTS - 1)
    assert rows["orin"][2].startswith(fmt.ms(CANARY_P50["orin"]))
    assert rows["orin"][3].startswith(fmt.ms(CANARY_P50["orin"] * drift))
    assert rows["orin"][4] == f"\u00d7{drift:.3f} (+{(drift - 1) * 100:.1f} %)"
    assert '<td class="num regression">' in out  # +9% is past the 5% mark
    assert rows[EVIL_DEVICE][4] == "\u00d71.000 (+0.0 %)" and html.escape(EVIL_DEVICE) in out
    assert CanarySection().render(ReportContext(synthetic_results(), RUN_INFO)).empty


def test_canary_pairs_order_by_started_and_a_lone_canary() -> None:
    rows = pd.DataFrame([
        {"model": CANARY_NAME, "device": "b", "runtime": "ort", "p50_ms": 11.0, "started": 200.0, "status": "ok"},
        {"model": CANARY_NAME, "device": "b", "runtime": "ort", "p50_ms": 10.0, "started": 100.0, "status": "ok"},
        {"model": CANARY_NAME, "device": "c", "runtime": "ort", "p50_ms": 7.0, "started": None, "status": "ok"},
        {"model": "m", "device": "b", "runtime": "ort", "p50_ms": 1.0, "started": 150.0, "status": "ok"},
    ])  # fmt: skip
    pairs = canary_pairs(rows).set_index("device")
    assert (pairs.loc["b", "first_p50_ms"], pairs.loc["b", "last_p50_ms"]) == (10.0, 11.0)
    assert pairs.loc["b", "drift"] == pytest.approx(1.1) and pairs.loc["b", "n"] == 2
    assert pairs.loc["c", "n"] == 1 and np.isnan(pairs.loc["c", "last_p50_ms"]) and np.isnan(pairs.loc["c", "drift"])
    assert canary_pairs(rows[rows["model"] == "m"]).empty


def test_canary_trend_one_line_per_board_with_drift(dash_ctx: ReportContext) -> None:
    table = canary_table(dash_ctx.history)
    assert len(table) == NIGHTS * len(BOARDS)
    fig = TrendsSection().render(dash_ctx).figures[0]
    assert fig.layout.title.text == CANARY_TITLE
    canary = [t for t in fig.data if t.meta["role"] == "canary"]
    assert len(canary) == 2 * len(BOARDS)  # p50 row and drift row per board
    top = {t.name: t for t in canary if t.yaxis == "y"}
    orin = top[fmt.plot_text("orin \u00b7 onnxruntime")]
    assert list(orin.y) == pytest.approx([CANARY_P50["orin"]] * NIGHTS)
    assert list(orin.customdata) == pytest.approx([CANARY_P50["orin"] * canary_drift("orin", n) for n in range(NIGHTS)])
    assert list(orin.error_y.array) == pytest.approx([CANARY_P50["orin"] * 0.03 * n for n in range(NIGHTS)])
    bottom = next(t for t in canary if t.yaxis == "y2" and t.name == orin.name)
    assert list(bottom.y) == pytest.approx([3.0 * n for n in range(NIGHTS)], abs=1e-4)
    spec = json.loads(fig.to_json())
    assert all(isinstance(t["y"], dict) and t["y"]["dtype"] == "f4" for t in spec["data"])


# -- 5a. the gate on the run page -----------------------------------------------------------------


def test_gate_section_regressions_first_escaped(run_ctx: ReportContext) -> None:
    out = GateSection().render(run_ctx).html
    assert "3 regression, 1 missing, 1 board-drift, 11 pass" in out
    findings, passes = out.split("<details>")
    verdicts = [re.sub("<[^>]+>", "", r[0]) for r in table_rows(findings)]
    assert verdicts == ["regression"] * 3 + ["missing", "board-drift"]
    first = table_rows(findings)[0]
    assert first[5:10] == ["latency_p50", "+30.0 %", "[+25.0 %, +35.0 %]", "+5 %", "0.004"]
    assert first[10] == html.escape(EVIL_NOTE) and EVIL_NOTE not in out
    assert "<summary>11 pass</summary>" in passes and len(table_rows(passes)) == 11
    assert table_rows(findings)[3][6:9] == ["+0.00 pts", fmt.MISSING, "-1 pts"]  # accuracy: points


def test_gate_section_absent_without_verdicts(store_path: tuple[Path, list[str]]) -> None:
    db, runs = store_path
    with open_store(db) as store:
        ctx = load_context(store, runs[0])  # the gate never judged the first night
    assert ctx.verdicts is not None and ctx.verdicts.empty and GateSection().render(ctx).empty


def test_dashboard_takes_the_latest_runs_verdicts_from_the_history(store_path: tuple[Path, list[str]],
                                                                   tmp_path: Path) -> None:  # fmt: skip
    db, runs = store_path
    out = tmp_path / "d.html"
    assert harness_main(["report", "--history", "--tag", TAG, "--store", str(db), "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    section = page[page.index('id="sec-gate"'):page.index('id="sec-canary"')]
    assert f"judged run {runs[-1]}" in section and f"Baseline run(s): {runs[-2]}" in section
    assert "3 regression" in section and html.escape(EVIL_NOTE) in section and EVIL_NOTE not in page
    assert 'class="section-error"' not in page


# -- 5b. p90 in the trends -----------------------------------------------------------------------


def test_p90_has_a_trend_row_with_its_regressions(dash_ctx: ReportContext) -> None:
    assert P90_AXIS in TREND_AXES and TREND_AXES.index(P90_AXIS) == 1
    figs = TrendsSection().render(dash_ctx).figures
    orin = next(f for f in figs if f.layout.title.text == "resnet18 on orin")
    assert orin.layout.yaxis2.title.text == P90_AXIS.title
    marks = {t.yaxis for t in orin.data if (t.meta or {}).get("role") == "regression"}
    assert marks == {"y", "y2", "y3"}  # p50, p90, p99
    cold_row = [orin.layout[k].title.text for k in orin.layout if k.startswith("yaxis")]
    assert COLD_START_AXIS.title in cold_row
    changes = compare_latest(dash_ctx.history)
    assert "p90_ms_change" in changes.columns and "cold_start_s_latest" in changes.columns


def test_history_frames_without_p90_or_cold_start_still_work() -> None:
    from history_data import result_row, runs_frame

    from reports.history import HistoryData

    rows = [result_row("r0", ORT, p50_ms=10.0), result_row("r1", ORT, p50_ms=11.0)]
    history = HistoryData(TAG, runs_frame(2), pd.DataFrame(rows))
    assert np.isnan(history.results["p90_ms"]).all() and np.isnan(history.results["cold_start_s"]).all()
    table = metric_table(history)
    assert set(table.columns.get_level_values("metric")) == {"p50_ms"}
    assert canary_table(history).empty


# -- the whole page ----------------------------------------------------------------------------------


def test_v4_pages_render_escaped_and_deterministic(run_ctx: ReportContext, dash_ctx: ReportContext) -> None:
    for ctx in (run_ctx, dash_ctx):
        page = render_report(ctx)
        assert page == render_report(ctx) and 'class="section-error"' not in page
        for section in ("gate", "canary", "pareto", "repeats", "results"):
            assert f'id="sec-{section}"' in page
        for raw in (UNSTABLE_REASON, NOISY_REASON, EVIL_NOTE, EVIL_DEVICE):
            assert raw not in page
        assert len(re.findall(r"<script\b", page)) == 2 + page.count('class="plotly-graph-div"')
    assert 'id="sec-trends"' in render_report(dash_ctx)


def test_hand_made_context_accepts_verdict_and_repeat_frames() -> None:
    rows = pd.DataFrame([make_row(model="m", variant="v", device="d", runtime="r", repeats=3, p50_ci_lo_ms=9.0,
                                  p50_ci_hi_ms=11.0)], columns=[*RESULT_COLUMNS, "repeats", "p50_ci_lo_ms",
                                                                 "p50_ci_hi_ms"])  # fmt: skip
    reps = pd.DataFrame({"model": "m", "variant": "v", "device": "d", "runtime": "r", "repeat": [0, 1, 2],
                         "p50_ms": [9.0, 10.0, 11.0]})  # fmt: skip
    verdicts = pd.DataFrame([{"model": "m", "variant": "v", "device": "d", "runtime": "r", "metric": "latency_p50",
                              "verdict": "pass", "ratio": 1.01}])  # fmt: skip
    ctx = ReportContext(rows, RUN_INFO, verdicts=verdicts, repeats=reps)
    assert "1 pass" in GateSection().render(ctx).html
    assert len(RepeatsSection().render(ctx).figures) == 1
    with pytest.raises(ReportError, match="p50_ms"):
        ReportContext(rows, RUN_INFO, repeats=reps.drop(columns="p50_ms"))
