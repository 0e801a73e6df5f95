"""The recommendation table: the rule, the budget's sources, the section, the suite key."""

from __future__ import annotations

import html

import pandas as pd
import pytest
from report_data import RUN_INFO, make_row

from harness.config.suite import ReportSettings, Suite
from reports.budget import Budget, resolve_budget
from reports.sections.base import RESULT_COLUMNS, ReportContext, ReportError
from reports.sections.recommend import RecommendSection, recommend

EVIL_DEVICE = "<script>alert('pi')</script>"


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))


def board(device: str = "orin", model: str = "m", **rows: tuple[float, float | None, float | None]) -> list[dict]:
    """``variant=(p50 ms, accuracy, energy mJ)`` per job, all on one (device, model)."""
    return [make_row(device=device, model=model, variant=v.replace("_", "-"), runtime="ort", p50_ms=p,
                     accuracy=a, energy_mj=e) for v, (p, a, e) in rows.items()]  # fmt: skip


def picks(df: pd.DataFrame, budget: Budget) -> dict[tuple[str, str], tuple[str, bool]]:
    out = recommend(ReportContext(df).ok, budget)
    return {(r["device"], r["model"]): (r["variant"], r["fits"]) for r in out.to_dict("records")}


def test_most_accurate_that_fits_ties_to_lower_latency() -> None:
    df = frame(*board(fp32=(30.0, 0.90, 60.0), fp16=(15.0, 0.89, 30.0), int8_a=(8.0, 0.85, 16.0),
                      int8_b=(7.0, 0.85, 20.0), prune=(6.0, 0.80, 9.0)))  # fmt: skip
    assert picks(df, Budget(latency_ms=20.0)) == {("orin", "m"): ("fp16", True)}
    assert picks(df, Budget(latency_ms=30.0)) == {("orin", "m"): ("fp32", True)}  # <= is inclusive
    assert picks(df, Budget(latency_ms=10.0)) == {("orin", "m"): ("int8-b", True)}  # tie: faster wins
    # The energy budget also applies: int8-b (20 mJ) no longer fits, int8-a (16 mJ) does.
    assert picks(df, Budget(latency_ms=10.0, energy_mj=18.0)) == {("orin", "m"): ("int8-a", True)}
    assert picks(df, Budget(energy_mj=10.0)) == {("orin", "m"): ("prune", True)}  # energy alone


def test_none_fits_names_the_fastest_and_each_device_stands_alone() -> None:
    df = frame(*board(fp32=(30.0, 0.90, 60.0), int8=(9.0, 0.85, 15.0)),
               *board(device="pi", fp32=(90.0, 0.90, None), int8=(40.0, 0.85, None)))  # fmt: skip
    got = picks(df, Budget(latency_ms=20.0))
    assert got == {("orin", "m"): ("int8", True), ("pi", "m"): ("int8", False)}
    # No energy measured on the Pi: under an energy budget nothing there fits.
    assert picks(df, Budget(latency_ms=100.0, energy_mj=100.0))[("pi", "m")] == ("int8", False)


def test_without_accuracy_the_fastest_fitting_is_shown_and_marked() -> None:
    df = frame(*board(fp32=(30.0, None, None), fp16=(12.0, None, None), int8=(8.0, None, None)))
    out = recommend(ReportContext(df).ok, Budget(latency_ms=20.0))
    assert out["variant"].tolist() == ["int8"] and not out["ranked_by_accuracy"].iloc[0]
    page = RecommendSection().render(ReportContext(df, budget=Budget(latency_ms=20.0))).html
    assert "(no accuracy: fastest)" in page


def test_section_escapes_and_states_budget_sources() -> None:
    df = frame(*board(device=EVIL_DEVICE, fp32=(30.0, 0.9, 10.0)), *board(device="orin", fp32=(5.0, 0.9, 10.0)),
               make_row(device="dead", model="m", status="failed", error="x"))  # fmt: skip
    info = dict(RUN_INFO, config={"suite": {"report": {"latency_budget_ms": 20.0, "energy_budget_mj": 50.0}}})
    ctx = ReportContext(df, info, budget=resolve_budget(info, latency_ms=10.0))
    out = RecommendSection().render(ctx).html
    assert EVIL_DEVICE not in out and html.escape(EVIL_DEVICE) in out
    assert "p50 \u2264 10.0 ms (command line)" in out and "energy per inference \u2264 50.0 mJ (suite)" in out
    assert out.count("none fits") == 1 and "no successful job" in out
    assert f'data-device="{html.escape(EVIL_DEVICE)}"' in out


def test_hint_without_budget_and_suite_budget_by_default() -> None:
    df = frame(*board(fp32=(30.0, 0.9, 10.0), int8=(8.0, 0.85, 5.0)))
    assert "Give a budget" in RecommendSection().render(ReportContext(df, RUN_INFO)).html
    info = dict(RUN_INFO, config={"suite": {"report": {"latency_budget_ms": 10.0}}})
    ctx = ReportContext(df, info)  # no budget given: the suite's applies
    assert ctx.budget == Budget(latency_ms=10.0, latency_source="suite")
    assert "<b>int8</b>" in RecommendSection().render(ctx).html


def test_budget_resolution_per_field() -> None:
    info = {"config": {"suite": {"report": {"latency_budget_ms": 20.0, "energy_budget_mj": 5.0}}}}
    assert resolve_budget(info, energy_mj=9.0) == Budget(20.0, 9.0, "suite", "command line")
    assert resolve_budget({}, latency_ms=3.0) == Budget(3.0, None, "command line", "")
    assert resolve_budget({"config": {"suite": {"report": None}}}).empty
    assert resolve_budget({"config": {"suite": {"report": {"latency_budget_ms": "junk"}}}}).empty
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ReportError, match="--budget-ms"):
            resolve_budget(info, latency_ms=bad)


def test_suite_report_key() -> None:
    base = {"name": "s", "models": [{"builtin": "digits-cnn"}]}
    suite = Suite.model_validate({**base, "report": {"latency_budget_ms": 20, "energy_budget_mj": 5}})
    assert suite.report == ReportSettings(latency_budget_ms=20.0, energy_budget_mj=5.0)
    assert Suite.model_validate(base).report is None
    assert suite.model_dump(mode="json")["report"] == {"latency_budget_ms": 20.0, "energy_budget_mj": 5.0,
                                                       "p99_budget_ms": None, "min_throughput": None}
    for bad in ({"latency_budget_ms": 0}, {"latency_budget_ms": 5, "budget": 1}):
        with pytest.raises(ValueError):
            Suite.model_validate({**base, "report": bad})
