"""The gate's statistics on data whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gate_testlib import latencies
from harness.gate.stats import Estimate, benjamini_hochberg, compare, percentile_estimate, run_noise


def test_batch_means_error_sees_the_correlation_an_iid_formula_misses() -> None:
    rng = np.random.default_rng(0)
    x = latencies(rng, 2.0, n=4000)
    est = percentile_estimate(x, 50)
    assert est.log_value == pytest.approx(math.log(np.median(x)))
    iid_se = 1.2533 * np.std(np.log(x)) / math.sqrt(len(x))  # the median's i.i.d. standard error
    assert est.se > 2 * iid_se
    # and it is right: medians of independent repeats spread as the estimate says
    spread = np.std([math.log(np.median(latencies(rng, 2.0, n=4000))) for _ in range(60)])
    assert 0.5 * spread < est.se < 2.0 * spread


def test_p99_needs_a_hundred_samples_per_batch() -> None:
    x = latencies(np.random.default_rng(1), 1.0, n=150)
    assert percentile_estimate(x, 99).se == math.inf  # one batch: no error estimate, never significant
    assert math.isfinite(percentile_estimate(latencies(np.random.default_rng(1), 1.0, n=2000), 99).se)


def test_run_noise_uses_history_only_when_there_is_enough_and_never_goes_below_the_floor() -> None:
    assert run_noise([0.0, 0.5]) == 0.02
    assert run_noise([0.0, 0.1, 0.2]) == pytest.approx(0.1)
    assert run_noise([0.0, 0.001, 0.002]) == 0.02


def test_compare_ratio_interval_and_one_sided_p() -> None:
    change = compare(Estimate(math.log(1.1), 0.01), [Estimate(0.0, 0.01)], noise=0.02)
    assert change.ratio == pytest.approx(1.1)
    lo, hi = change.interval()
    assert lo < 1.1 < hi and lo > 1.0
    assert change.p_increase() < 0.01 < 0.99 < change.p_decrease()
    many = compare(Estimate(math.log(1.1), 0.01), [Estimate(0.0, 0.01)] * 5, noise=0.02)
    assert many.se < change.se  # five baseline runs pin the baseline down better than one



def test_a_noise_fitted_on_few_runs_has_students_tails() -> None:
    est, base = Estimate(math.log(1.06), 0.0), [Estimate(0.0, 0.0)] * 5
    normal, short = compare(est, base, noise=0.02), compare(est, base, noise=0.02, dof=8)
    assert short.ratio == normal.ratio and short.se == normal.se
    # t with 8 degrees of freedom: 2.306 instead of 1.960 for the 95% interval
    assert math.log(short.interval()[1]) - short.estimate == pytest.approx(2.306 * short.se, rel=1e-3)
    assert math.log(normal.interval()[1]) - normal.estimate == pytest.approx(1.960 * normal.se, rel=1e-3)
    assert normal.p_increase() < short.p_increase() < 0.05
    assert compare(est, base, noise=0.02, dof=10_000).p_increase() == pytest.approx(normal.p_increase(), rel=1e-2)

def test_benjamini_hochberg_matches_the_textbook_example() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([]) == []
