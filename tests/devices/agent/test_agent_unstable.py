"""The ``unstable`` mark: the CV rule (2.5%) and pyperf's std and min/max rules, each with
its numbers; in the result event of a real job."""

from __future__ import annotations

import json
from pathlib import Path

import agent_testlib as lib
import numpy as np

from devices.agent.stats import (
    CV_LIMIT,
    PYPERF_MINMAX_LIMIT,
    PYPERF_STD_LIMIT,
    pyperf_values,
    summarize,
    unstable_reason,
)


def ms_to_ns(values: list[float]) -> list[int]:
    return [int(v * 1e6) for v in values]


def test_thresholds_are_the_cited_ones() -> None:
    assert (CV_LIMIT, PYPERF_STD_LIMIT, PYPERF_MINMAX_LIMIT) == (0.025, 0.10, 0.50)


def test_a_steady_window_is_not_unstable() -> None:
    values = 10.0 + 0.1 * np.sin(np.arange(1000))  # CV ~0.7%, max 1% off the mean
    assert unstable_reason(summarize(ms_to_ns(list(values)))) is None


def test_cv_above_2_5_percent_alone() -> None:
    values = [10.0, 10.6] * 500  # CV 2.9%, std 2.9% of the mean, max 2.9% off
    reason = unstable_reason(summarize(ms_to_ns(values)))
    assert reason == "CV 2.9% > 2.5% (trtexec-style CV rule)"


def test_one_stall_trips_the_pyperf_max_rule_only() -> None:
    values = [10.0] * 999 + [16.0]  # max 60% above the mean; CV 1.9%
    s = summarize(ms_to_ns(values))
    assert s["cv"] < CV_LIMIT
    assert unstable_reason(s) == "maximum 16 ms is 60% greater than the mean 10.01 ms (pyperf: >= 50%)"


def test_wide_spread_trips_every_rule_with_its_numbers() -> None:
    values = [4.0, 10.0, 16.0] * 100  # mean 10, std ~4.9 (49%), min 60% below, max 60% above
    reason = unstable_reason(summarize(ms_to_ns(values)))
    parts = reason.split("; ")
    assert parts[0].startswith("CV 49.1% > 2.5%")
    assert parts[1] == "std 4.907 ms is 49% of the mean 10 ms (pyperf: >= 10%)"
    assert parts[2] == "minimum 4 ms is 60% smaller than the mean 10 ms (pyperf: >= 50%)"
    assert parts[3] == "maximum 16 ms is 60% greater than the mean 10 ms (pyperf: >= 50%)"


def test_the_boundaries() -> None:
    exact_half = {"mean_ms": 10.0, "std_ms": 0.1, "cv": 0.01, "min_ms": 9.9, "max_ms": 15.0}
    assert "maximum 15 ms is 50% greater" in unstable_reason(exact_half)  # pyperf: abs(percent) >= 50
    at_cv = {"mean_ms": 10.0, "std_ms": 0.25, "cv": 0.025, "min_ms": 9.9, "max_ms": 10.1}
    assert unstable_reason(at_cv) is None  # trtexec: strictly above
    at_std = {"mean_ms": 10.0, "std_ms": 1.0, "cv": 0.1, "min_ms": 9.0, "max_ms": 11.0}
    assert "std 1 ms is 10% of the mean" in unstable_reason(at_std)  # pyperf: >= 10%


def test_one_sample_and_missing_numbers() -> None:
    assert unstable_reason(summarize([5_000_000])) is None  # no std for n = 1
    assert unstable_reason({}) is None and unstable_reason({"mean_ms": 0.0}) is None


def test_the_result_event_carries_the_mark(tmp_path: Path) -> None:
    res = json.loads(lib.sleep_job_output(tmp_path, 0.5, min_s=0.05, min_iters=50, warmup_s=0.01).splitlines()[-1])
    assert "unstable" in res
    assert res["unstable"] == unstable_reason(res["latency"], res["samples_ns"])
    assert res["unstable"] is None or isinstance(res["unstable"], str)


def test_pyperf_rules_read_100_ms_values_so_one_stall_is_not_a_verdict() -> None:
    """One 16 ms stall among 1 ms inferences trips the max rule on single calls, not on
    pyperf's values (chunk means of >= 100 ms); a slow second half trips it either way."""
    steady = [1.0 + 0.001 * (i % 7) for i in range(2000)]
    stall = list(steady)
    stall[500] = 16.0
    summary = summarize(ms_to_ns(stall))
    assert "maximum 16 ms" in unstable_reason(summary)
    assert unstable_reason({**summary, "cv": None}, ms_to_ns(stall)) is None
    drift = steady[:1000] + [2.0] * 1000
    reason = unstable_reason(summarize(ms_to_ns(drift)), ms_to_ns(drift))
    assert "values of >= 0.1 s" in reason and "std" in reason
    assert len(pyperf_values(ms_to_ns(steady))) == 20
    assert len(pyperf_values(ms_to_ns([250.0] * 4))) == 4  # long inferences: one value each
