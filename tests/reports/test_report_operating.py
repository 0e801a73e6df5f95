"""Operating points in the report: the curves (throughput vs p99, a trace per variant), the best
point per variant, the recommendation that answers "the most accurate variant that sustains 30
FPS under 50 ms p99", the results table's point column and the history's series per point."""

from __future__ import annotations

import pandas as pd
from report_data import RUN_INFO, make_row

from reports.budget import Budget, resolve_budget
from reports.history import HistoryData, metric_table
from reports.html import write_report
from reports.sections.base import RESULT_COLUMNS, ReportContext
from reports.sections.operating import OperatingSection, best_points
from reports.sections.recommend import recommend
from reports.sections.results import ResultsSection

# (variant, accuracy, inflight) -> (throughput, p99 ms): fp32 is accurate but saturates at 25/s,
# int8 reaches 40/s; each curve's p99 rises with the requests in flight.
CURVES = {
    ("fp32", 0.80): {1: (12.0, 85.0), 2: (22.0, 95.0), 4: (25.0, 170.0)},
    ("fp16", 0.79): {1: (20.0, 50.0), 2: (31.0, 48.0), 4: (36.0, 110.0)},
    ("int8", 0.74): {1: (30.0, 34.0), 2: (40.0, 45.0), 4: (44.0, 95.0)},
}


def frame(device: str = "orin") -> pd.DataFrame:
    rows = []
    for (variant, accuracy), points in CURVES.items():
        for inflight, (throughput, p99) in points.items():
            rows.append(make_row(device=device, model="det", variant=variant, runtime="openvino", accuracy=accuracy,
                                 throughput=throughput, p99_ms=p99, p50_ms=p99 / 2, point=f"offline inflight={inflight}",
                                 scenario="offline", batch=1, inflight=inflight, resolution="224x224"))  # fmt: skip
    return pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "point", "scenario", "batch", "inflight", "resolution"])


def test_the_section_draws_a_curve_per_variant() -> None:
    ctx = ReportContext(frame(), RUN_INFO, budget=Budget(p99_ms=50.0, min_throughput=30.0))
    out = OperatingSection().render(ctx)
    [fig] = out.figures
    assert [t.name for t in fig.data] == ["fp16 \u00b7 openvino", "fp32 \u00b7 openvino", "int8 \u00b7 openvino"]
    int8 = fig.data[2]
    assert list(int8.y) == [30.0, 40.0, 44.0] and list(int8.x) == [34.0, 45.0, 95.0]  # in order of inflight
    assert "offline inflight=2" in int8.text[1]
    assert [s.x0 for s in fig.layout.shapes if s.yref == "paper"] == [50.0]  # the p99 budget
    assert [s.y0 for s in fig.layout.shapes if s.xref == "paper"] == [30.0]  # the throughput floor
    assert "Best point" in out.html and "(p99 over)" in out.html  # fp32 has no point under 50 ms


def test_the_best_point_is_the_most_throughput_under_the_bound() -> None:
    best = best_points(ReportContext(frame(), RUN_INFO).ok, p99_ms=50.0).set_index("variant")
    assert best.loc["int8", "point"] == "offline inflight=2" and best.loc["int8", "fits"]
    assert best.loc["fp16", "point"] == "offline inflight=2" and best.loc["fp16", "throughput"] == 31.0
    assert not best.loc["fp32", "fits"] and best.loc["fp32", "point"] == "offline inflight=1"  # its closest miss
    unbounded = best_points(ReportContext(frame(), RUN_INFO).ok).set_index("variant")
    assert unbounded.loc["fp32", "point"] == "offline inflight=4"


def test_the_most_accurate_variant_that_sustains_30_fps_under_50_ms_p99() -> None:
    ok = ReportContext(frame(), RUN_INFO).ok
    pick = recommend(ok, Budget(p99_ms=50.0, min_throughput=30.0)).iloc[0]
    assert (pick["variant"], pick["point"], pick["fits"]) == ("fp16", "offline inflight=2", True)
    pick = recommend(ok, Budget(p99_ms=50.0, min_throughput=35.0)).iloc[0]
    assert (pick["variant"], pick["point"]) == ("int8", "offline inflight=2")
    none = recommend(ok, Budget(p99_ms=30.0)).iloc[0]
    assert not none["fits"]


def test_a_paced_result_must_have_kept_up() -> None:
    rows = [make_row(model="det", variant=v, runtime="ort", accuracy=a, throughput=30.0, p99_ms=20.0, scenario="paced",
                     kept_up=k, point="paced") for v, a, k in (("fp32", 0.8, False), ("int8", 0.7, True))]
    df = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "point", "scenario", "kept_up"])
    pick = recommend(ReportContext(df, RUN_INFO).ok, Budget(min_throughput=30.0)).iloc[0]
    assert pick["variant"] == "int8"


def test_the_suite_sets_the_p99_budget_and_the_throughput_floor() -> None:
    info = dict(RUN_INFO, config={"suite": {"report": {"p99_budget_ms": 50, "min_throughput": 30}}})
    budget = resolve_budget(info)
    assert (budget.p99_ms, budget.min_throughput, budget.empty) == (50.0, 30.0, False)


def test_a_run_without_operating_points_has_no_section(tmp_path) -> None:  # noqa: ANN001
    plain = pd.DataFrame([make_row(model="m", variant="fp32", runtime="ort")], columns=list(RESULT_COLUMNS))
    assert OperatingSection().render(ReportContext(plain, RUN_INFO)).empty
    assert "Point" not in ResultsSection().render(ReportContext(plain, RUN_INFO)).html
    page = write_report(ReportContext(frame(), RUN_INFO), tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="sec-operating"' in page and "<th>Point</th>" in page.replace(' class="num"', "")


def test_the_history_draws_a_series_per_point() -> None:
    results = frame().assign(run=RUN_INFO["id"], started=1.0)
    runs = pd.DataFrame({"run": [RUN_INFO["id"]], "started": [1.0]})
    verdicts = pd.DataFrame([{"candidate": RUN_INFO["id"], "model": "det", "variant": "int8", "device": "orin",
                              "runtime": "openvino", "point": "offline inflight=2", "metric": "latency_p99",
                              "verdict": "regression", "ratio": 1.2, "ci_lo": 1.1, "ci_hi": 1.3, "threshold": 0.1}])
    history = HistoryData("nightly", runs, results, verdicts)
    variants = set(metric_table(history).columns.get_level_values("variant"))
    assert "int8 @ offline inflight=2" in variants and len(variants) == 9
    assert list(history.verdicts["variant"]) == ["int8 @ offline inflight=2"]


def test_the_gate_section_names_the_point_of_a_verdict() -> None:
    from reports.sections.gate import GateSection

    verdicts = pd.DataFrame([{"gate_id": "g", "created": 1.0, "candidate": RUN_INFO["id"], "model": "det",
                              "variant": v, "device": "orin", "runtime": "openvino", "point": p, "metric": "latency_p99",
                              "verdict": "regression", "ratio": 1.2, "ci_lo": 1.1, "ci_hi": 1.3, "threshold": 0.1,
                              "p": 0.001, "q": 0.002, "note": ""} for v, p in (("int8", "offline inflight=2"),
                                                                                ("fp32", None))])
    html = GateSection().render(ReportContext(frame(), RUN_INFO, verdicts=verdicts)).html
    assert "int8 @ offline inflight=2" in html and "fp32 @" not in html
