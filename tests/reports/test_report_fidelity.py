"""Degraded results (outputs past the suite's fidelity limit): marked in the results table, left
out of the Pareto fronts and the recommendations with a note, unless their accuracy vouches."""

from __future__ import annotations

import html
import math

import pandas as pd
from report_data import RUN_INFO, make_row

from harness.config.gate import DEFAULT
from harness.coordinator.builds import reference_chains
from harness.gate.evaluate import REFERENCE_CHAINS as GATE_REFERENCE_CHAINS
from harness.zoo.source import SourceModel
from reports import fidelity
from reports.budget import Budget
from reports.sections.base import RESULT_COLUMNS, ReportContext
from reports.sections.pareto import ParetoSection
from reports.sections.recommend import RecommendSection
from reports.sections.results import ResultsSection
from reports.sections.summary import SummarySection

REASON = "cosine 0.013 < 0.95, SNR -0.4 dB < 10 dB on output 'sigmoid_0.tmp_0'"


def frame(*rows: dict) -> pd.DataFrame:
    extra = ["degraded", "cosine", "snr_db", "fidelity_inputs", "quality"]
    return pd.DataFrame(list(rows), columns=[*RESULT_COLUMNS, *extra])


def job(model: str, variant: str, p50: float, accuracy: float | None, degraded: str | None = None,
        device: str = "orin", cosine: float = 0.9999, snr: float = 40.0) -> dict:
    return make_row(device=device, model=model, variant=variant, runtime="onnxruntime", precision="as-model",
                    p50_ms=p50, accuracy=accuracy, degraded=degraded, cosine=cosine, snr_db=snr,
                    fidelity_inputs="synthetic")


def detector() -> list[dict]:
    """No eval set: the broken fp16 would be the fastest point of the front."""
    return [job("det", "fp32", 20.0, None, cosine=1.0, snr=math.inf),
            job("det", "fp16", 5.0, None, REASON, cosine=0.013, snr=-0.4), job("det", "int8", 9.0, None)]


def classifier() -> list[dict]:
    """With accuracy: prune drops 0.2 points (its accuracy vouches), prune2 6 points (it does not)."""
    return [job("cls", "fp32", 20.0, 0.76), job("cls", "prune", 8.0, 0.758, "cosine 0.91 < 0.95 on output 'logits'"),
            job("cls", "prune2", 4.0, 0.70, "cosine 0.62 < 0.95 on output 'logits'")]


def plotted(ctx: ReportContext) -> set[tuple[str, str]]:
    """(model, variant) of every point drawn in every chart."""
    out = set()
    for fig in ParetoSection().render(ctx).figures:
        for trace in fig.data:
            if (trace.meta or {}).get("role") == "points":
                model = fig.layout.title.text.split(" on ")[0]
                out |= {(model, html.unescape(c[0])) for c in trace.customdata}
    return out


def test_a_degraded_variant_is_left_out_of_the_fronts_with_a_note() -> None:
    ctx = ReportContext(frame(*detector(), *classifier()), run_info=RUN_INFO)
    points = plotted(ctx)
    assert ("det", "fp16") not in points and ("cls", "prune2") not in points
    assert {("det", "fp32"), ("det", "int8"), ("cls", "fp32"), ("cls", "prune")} <= points
    page = html.unescape(ParetoSection().render(ctx).html)
    assert "Left out on orin as degraded" in page and f"det [fp16] on onnxruntime: {REASON}" in page
    assert "cls [prune2] on onnxruntime: cosine 0.62 < 0.95" in page and "cls [prune] on" not in page


def test_the_accuracy_rule_comes_from_the_runs_gate() -> None:
    df = frame(*classifier())
    assert fidelity.accuracy_rule(RUN_INFO) == (DEFAULT.accuracy.max_drop, DEFAULT.accuracy.min_relative)
    assert fidelity.DEFAULT_MAX_DROP == DEFAULT.accuracy.max_drop
    lenient = {**RUN_INFO, "config": {"suite": {"gate": {"accuracy": {"max_drop": 10}}}}}
    assert ("cls", "prune2") in plotted(ReportContext(df, run_info=lenient))
    no_rule = {**RUN_INFO, "config": {"suite": {"gate": {"latency_p50": {"max_increase": 0.05}}}}}
    assert fidelity.accuracy_rule(no_rule) is None
    assert plotted(ReportContext(df, run_info=no_rule)) == {("cls", "fp32")}  # nothing vouches without a rule
    relative = {**RUN_INFO, "config": {"suite": {"gate": {"accuracy": {"min_relative": 0.9}}}}}
    assert plotted(ReportContext(df, run_info=relative)) == {("cls", "fp32"), ("cls", "prune"), ("cls", "prune2")}
    # A task metric (``quality``) speaks before top-1 accuracy: prune's mAP fell 10 points.
    tasked = frame(*({**r, "quality": q} for r, q in zip(classifier(), (0.50, 0.40, 0.497))))
    assert plotted(ReportContext(tasked, run_info=RUN_INFO)) == {("cls", "fp32"), ("cls", "prune2")}


def test_an_override_of_the_gate_sets_the_accuracy_rule_of_the_results_it_matches() -> None:
    """The report applies the rule ``harness gate`` would: the first matching override's accuracy."""
    df = frame(*classifier())
    lenient = {"match": {"model": "cls", "variant": "prune*", "device": "*", "runtime": "*"},
               "accuracy": {"max_drop": 10.0, "min_relative": None}}
    unrelated = {"match": {"model": "det", "variant": "*", "device": "*", "runtime": "*"},
                 "accuracy": {"max_drop": 50.0, "min_relative": None}}
    gate = {"accuracy": {"max_drop": 0.5, "min_relative": None}, "overrides": [unrelated, lenient]}
    info = {**RUN_INFO, "config": {"suite": {"gate": gate}}}
    assert plotted(ReportContext(df, run_info=info)) == {("cls", "fp32"), ("cls", "prune"), ("cls", "prune2")}
    assert fidelity.accuracy_rule(info, {"model": "cls", "variant": "prune2", "device": "orin",
                                         "runtime": "onnxruntime"}) == (10.0, None)
    assert fidelity.accuracy_rule(info) == (0.5, None)
    # The first match decides: an earlier override naming no accuracy keeps the policy's 0.5 points.
    silent = {"match": {"model": "cls", "variant": "*", "device": "*", "runtime": "*"}, "accuracy": None}
    first = {**RUN_INFO, "config": {"suite": {"gate": {**gate, "overrides": [silent, lenient]}}}}
    assert plotted(ReportContext(df, run_info=first)) == {("cls", "fp32"), ("cls", "prune")}


def test_the_recommendation_never_picks_a_degraded_variant() -> None:
    only_broken = [job("seg", "fp16", 3.0, None, REASON)]
    ctx = ReportContext(frame(*detector(), *only_broken), run_info=RUN_INFO, budget=Budget(latency_ms=30.0))
    page = html.unescape(RecommendSection().render(ctx).html)
    row = {model: page.split(f"<td>{model}</td>", 1)[1].split("</tr>", 1)[0] for model in ("det", "seg")}
    assert "<b>int8</b>" in row["det"] and "fp16" not in row["det"]  # fp16 is faster, but degraded
    assert "only degraded results" in row["seg"]
    assert "Left out as degraded" in page and f"seg [fp16] on onnxruntime: {REASON}" in page
    clean = ReportContext(frame(*detector()[:1]), run_info=RUN_INFO, budget=Budget(latency_ms=30.0))
    assert "Left out" not in RecommendSection().render(clean).html


def test_the_results_table_and_summary_show_the_mark_and_the_figures() -> None:
    ctx = ReportContext(frame(*detector()), run_info=RUN_INFO)
    page = ResultsSection().render(ctx).html
    fp16 = page.split("<td>fp16</td>", 1)[1].split("</tr>", 1)[0]
    assert 'class="badge degraded"' in fp16 and html.escape(f"degraded: {REASON}") in fp16
    assert "0.0130" in fp16 and "\u2212" not in fp16 and "-0.4 dB" in fp16
    fp32 = page.split("<td>fp32</td>", 1)[1].split("</tr>", 1)[0]
    assert "badge degraded" not in fp32 and "1.0000" in fp32 and "\u221e dB" in fp32
    assert "1 result degraded" in SummarySection().render(ctx).html


def test_the_reference_chains_agree_across_layers() -> None:
    assert fidelity.REFERENCE_CHAINS == GATE_REFERENCE_CHAINS
    kinds = ("builtin", "onnx", "tflite")
    chains = {c for kind in kinds for c in reference_chains(SourceModel("m", (1,), "h", kind=kind))}
    assert chains == set(fidelity.REFERENCE_CHAINS)
