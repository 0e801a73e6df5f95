"""Folding a job's repeats into its headline result."""

from __future__ import annotations

import numpy as np
import pytest

from harness.coordinator.repeats import as_repeat, combine
from harness.records import JobResult


def window(p50: float, noisy: str | None = None, throttled: bool = False) -> JobResult:
    metrics = {"p50_ms": p50, "p99_ms": p50 * 1.5, "cv": 0.01, "n_iters": 100.0, "window_s": 1.0, "min_ms": p50 * 0.9,
               "max_ms": p50 * 2, "peak_rss_mb": 50 + p50, "threads": 2, "noisy": noisy, "throttled": throttled}
    return JobResult("ok", metrics=metrics, samples_ns=np.full(100, int(p50 * 1e6)),
                     details={"window": {"start_unix": 1.0, "end_unix": 2.0}, "board": "b1", "runtime": {"name": "x"}})


def test_headline_is_the_median_of_the_repeats_with_their_spread_as_interval() -> None:
    results = [window(p) for p in (10.0, 12.0, 11.0, 30.0, 10.5)]
    reps = [as_repeat(r, i, "b1", 100.0 + i, 101.0 + i) for i, r in enumerate(results)]
    out = combine(reps, results[-1])
    m = out.metrics
    assert m["p50_ms"] == 11.0 and m["repeats"] == 5  # the outlier window moves the median little
    assert m["p50_ci_lo_ms"] == 10.0 and m["p50_ci_hi_ms"] == 30.0  # n=5: [min, max] (coverage 94%)
    assert m["n_iters"] == 500 and m["min_ms"] == pytest.approx(9.0) and m["max_ms"] == 60.0
    assert m["peak_rss_mb"] == 80.0 and m["throttled"] is False
    assert out.samples_ns is None and [r.index for r in out.repeats] == [0, 1, 2, 3, 4]
    assert out.repeats[3].summary["window"] == {"start_unix": 1.0, "end_unix": 2.0}
    assert out.details["repeats"]["p50_ms"] == [10.0, 12.0, 11.0, 30.0, 10.5]
    # the 30 ms window is >= 50% above the repeats' mean: pyperf's rule, on per-process values
    assert out.metrics["unstable"].startswith("between repeats: std") and "maximum 30 ms" in out.metrics["unstable"]


def test_marks_say_how_many_repeats_carried_them() -> None:
    results = [window(10.0), window(10.0, noisy="load 3.1 > 1.0"), window(10.0, throttled=True)]
    out = combine([as_repeat(r, i, "b1", 0.0, 1.0) for i, r in enumerate(results)], results[-1])
    assert out.metrics["noisy"] == "1/3 repeats noisy: load 3.1 > 1.0"
    assert out.metrics["throttled"] is True


def test_one_repeat_is_its_own_headline() -> None:
    r = window(10.0)
    r.metrics["p50_ci_lo_ms"], r.metrics["p50_ci_hi_ms"] = 9.9, 10.1
    out = combine([as_repeat(r, 0, "b1", 0.0, 1.0)], r)
    assert out.metrics["p50_ci_lo_ms"] == 9.9 and out.metrics["repeats"] == 1
    assert out.samples_ns is r.samples_ns and len(out.repeats) == 1


def test_steady_repeats_are_not_marked() -> None:
    results = [window(p) for p in (10.0, 10.2, 9.9)]
    out = combine([as_repeat(r, i, "b1", 0.0, 1.0) for i, r in enumerate(results)], results[-1])
    assert out.metrics["unstable"] is None and out.metrics["noisy"] is None


def test_a_minority_of_unstable_windows_does_not_mark_the_median() -> None:
    def marked(r: JobResult) -> JobResult:
        r.metrics["unstable"] = "CV 3.1% > 2.5% (trtexec-style CV rule)"
        return r

    one = [marked(window(10.0)), window(10.1), window(9.9)]
    two = [marked(window(10.0)), marked(window(10.1)), window(9.9)]
    assert combine([as_repeat(r, i, "b1", 0.0, 1.0) for i, r in enumerate(one)], one[-1]).metrics["unstable"] is None
    out = combine([as_repeat(r, i, "b1", 0.0, 1.0) for i, r in enumerate(two)], two[-1])
    assert out.metrics["unstable"] == "2/3 repeats unstable: CV 3.1% > 2.5% (trtexec-style CV rule)"
