"""The gate's quality rule on task metrics: a detector's mAP (no top-1 at all) judged by its
drop in points, by ``min_relative`` (MLPerf's 99% of the reference), and against the run's own
fp32 variant (``reference: fp32``), through the real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import harness.store
from harness.config.gate import Drop, Policy
from harness.coordinator.repeats import as_repeat, combine
from harness.gate.evaluate import evaluate, quality
from harness.records import Job, JobResult


@pytest.fixture
def store(tmp_path: Path):  # noqa: ANN201
    with harness.store.open(tmp_path / "h.db") as st:
        yield st


def add_run(store, maps: dict[str, float], accuracy: float | None = None) -> str:  # noqa: ANN001
    """One run of the detector ``det`` on board ``orin``: variant -> its mAP@[.5:.95]."""
    run = store.create_run(suite="s", config={"suite": {"name": "s"}, "devices": []})
    jobs = {v: Job("det", v, "orin", "onnxruntime") for v in maps}
    ids = store.add_jobs(run, list(jobs.values()))
    for variant, value in maps.items():
        task = {"metric": "map_50_95", "quality": value, "map_50_95": value, "map_50": min(1.0, value + 0.2)}
        samples = np.full(50, 2_000_000, np.int64)
        window = JobResult("ok", metrics={"p50_ms": 2.0, "n_iters": 50, "accuracy": accuracy}, samples_ns=samples,
                           details={"task": task})
        store.record(ids[jobs[variant].key], combine([as_repeat(window, 0, "orin", 1.0, 2.0)], window))
    store.finish_run(run, "ok")
    return run


def verdicts(result) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {v.config["variant"]: (v.verdict, v.note) for v in result.verdicts if v.metric == "accuracy"}


def test_a_detectors_map_is_gated_in_points(store) -> None:  # noqa: ANN001
    base = add_run(store, {"fp32": 0.40, "int8": 0.40})
    cand = add_run(store, {"fp32": 0.397, "int8": 0.39})
    got = verdicts(evaluate(store, cand, [base], Policy(accuracy=Drop(max_drop=0.5))))
    assert got["fp32"][0] == "pass" and got["int8"][0] == "regression"  # -0.3 and -1.0 points of mAP
    assert got["int8"][1] == "points of map_50_95"


def test_min_relative_keeps_99_percent_of_the_reference(store) -> None:  # noqa: ANN001
    base = add_run(store, {"fp32": 0.40, "int8": 0.40})
    cand = add_run(store, {"fp32": 0.397, "int8": 0.395})  # 0.9925 and 0.9875 of the baseline
    result = evaluate(store, cand, [base], Policy(accuracy=Drop(min_relative=0.99)))
    got = verdicts(result)
    assert got["fp32"][0] == "pass" and got["int8"][0] == "regression"
    assert "0.9875 of the reference (at least 0.99)" in got["int8"][1]
    both = verdicts(evaluate(store, cand, [base], Policy(accuracy=Drop(max_drop=1.0, min_relative=0.99))))
    assert both["int8"][0] == "regression"  # within 1 point, but below 99%: both must hold


def test_reference_fp32_judges_a_run_on_its_own(store) -> None:  # noqa: ANN001
    cand = add_run(store, {"fp32": 0.40, "int8": 0.3975, "int4": 0.39})
    policy = Policy(accuracy=Drop(min_relative=0.99, reference="fp32"))
    got = verdicts(evaluate(store, cand, [], policy))  # no baseline run needed
    assert got == {"int8": ("pass", got["int8"][1]), "int4": ("regression", got["int4"][1])}
    assert "0.9750 of the reference" in got["int4"][1]
    lone = add_run(store, {"int8": 0.3975})
    assert verdicts(evaluate(store, lone, [], policy))["int8"][0] == "missing"


def test_top1_still_counts_where_there_is_no_task_metric() -> None:
    import pandas as pd

    assert quality(pd.Series({"accuracy": 0.9, "quality": float("nan")})) == 0.9
    assert quality(pd.Series({"accuracy": None, "quality": 0.41})) == 0.41
    assert np.isnan(quality(pd.Series({"accuracy": None})))


def test_the_rule_needs_a_limit_and_reads_from_a_policy_file() -> None:
    with pytest.raises(ValidationError, match="give max_drop"):
        Drop()
    with pytest.raises(ValidationError):
        Drop(min_relative=1.5)
    policy = Policy.model_validate({"accuracy": {"min_relative": 0.99, "reference": "fp32"}})
    rule = policy.rules_for({"model": "m", "variant": "v", "device": "d", "runtime": "r"})["accuracy"]
    assert isinstance(rule, Drop) and rule.reference == "fp32" and rule.describe() == "0.99x the reference"
    assert rule.allows(0.396, 0.40) and not rule.allows(0.395, 0.40)
    assert Drop(max_drop=0.5).allows(0.395, 0.40) and not Drop(max_drop=0.5).allows(0.3949, 0.40)
