"""Early stopping (``measure.target``): the order-statistics interval of a percentile, the
stop rule, the target loop's stop reasons and clock hygiene, the spec key, end to end."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

import devices.agent.loops as loops
from devices.agent.cli import main
from devices.agent.earlystop import (
    binomial_tails,
    check_every,
    coverage,
    min_samples,
    percentile_interval,
    quantile_ci_ranks,
    stop_record,
    target_met,
)
from devices.agent.errors import MeasurementError, ProtocolError
from devices.agent.loops import Deadline, target_loop
from devices.agent.runtimes import SleepRuntime
from devices.agent.spec import TargetSettings, parse_spec
from devices.agent.stats import median_ci_ranks, percentile

P99 = TargetSettings(percentile=99.0, rel_error=0.02, confidence=0.95)


def reference_tails(n: int, p: float) -> tuple[list[float], list[float]]:
    """P(B <= k) and P(B > k) from lgamma pmfs, each tail summed on its own (independent of
    the ratio recurrence under test)."""
    log_pmf = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
               + (n - k) * math.log1p(-p) for k in range(n + 1)]
    pmf = np.exp(np.asarray(log_pmf))
    cdf = np.cumsum(pmf)
    sf = np.concatenate((np.cumsum(pmf[::-1])[::-1][1:], [0.0]))
    return list(cdf), list(sf)


@pytest.mark.parametrize(("n", "p"), [(1, 0.5), (7, 0.3), (40, 0.9), (400, 0.99), (150, 0.05)])
def test_binomial_tails_match_the_exact_binomial(n: int, p: float) -> None:
    cdf, sf = binomial_tails(n, p)
    ref_cdf, ref_sf = reference_tails(n, p)
    if n <= 40:  # exact integer arithmetic where it fits
        exact = [math.fsum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1)) for k in range(n + 1)]
        assert np.allclose(cdf, exact, rtol=1e-12, atol=1e-300)
    assert np.allclose(cdf, ref_cdf, rtol=1e-9, atol=1e-300)
    assert np.allclose(sf, ref_sf, rtol=1e-9, atol=1e-300)  # small upper tails keep their precision
    assert sf[-1] == 0.0


@pytest.mark.parametrize("n", [6, 7, 10, 51, 200, 1001])
def test_the_median_case_is_median_ci_ranks(n: int) -> None:
    assert quantile_ci_ranks(n, 0.5, 0.95) == median_ci_ranks(n, 0.95)


@pytest.mark.parametrize(("q", "conf"), [(0.99, 0.95), (0.9, 0.95), (0.5, 0.95), (0.99, 0.99), (0.05, 0.9)])
def test_ranks_are_the_tightest_equal_tailed_pair_and_cover(q: float, conf: float) -> None:
    n0 = min_samples(q, conf)
    assert quantile_ci_ranks(n0 - 1, q, conf) is None
    alpha_half = (1 - conf) / 2
    for n in (n0, n0 + 1, 3 * n0, 5000):
        lo, hi = quantile_ci_ranks(n, q, conf)
        cdf, sf = reference_tails(n, q)
        assert 0 <= lo < hi <= n - 1
        assert cdf[lo] <= alpha_half + 1e-12 and sf[hi] <= alpha_half + 1e-12
        # one rank further in on either side would break its tail's bound
        assert lo + 1 >= n or cdf[lo + 1] > alpha_half - 1e-12
        assert hi == 0 or sf[hi - 1] > alpha_half - 1e-12
        assert coverage(n, q, lo, hi) >= conf - 1e-12


def test_p99_needs_368_samples_at_95_percent() -> None:
    assert min_samples(0.99, 0.95) == 368 and quantile_ci_ranks(367, 0.99) is None
    assert quantile_ci_ranks(368, 0.99)[1] == 367  # the upper end is still the maximum


def test_the_interval_covers_the_true_p99_at_least_as_often_as_promised() -> None:
    """Monte Carlo on a lognormal (a long-tailed latency): coverage >= 95% less the MC error."""
    rng = np.random.default_rng(7)
    true_p99 = math.exp(0.5 * 2.3263478740408408)  # lognormal(0, 0.5): exp(sigma * z_0.99)
    trials, hits = 1500, 0
    for _ in range(trials):
        got = percentile_interval(rng.lognormal(0.0, 0.5, 600), 99, 0.95)
        hits += got["lo"] <= true_p99 <= got["hi"]
    assert hits / trials >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / trials)


def test_percentile_interval_estimate_and_rule() -> None:
    values = list(np.random.default_rng(1).permutation(np.arange(1, 1001, dtype=float)))
    got = percentile_interval(values, 99, 0.95)
    assert got["estimate"] == pytest.approx(percentile(np.sort(values), 99))  # what the result reports
    lo, hi = got["ranks"]
    assert (got["lo"], got["hi"]) == (lo + 1.0, hi + 1.0)  # value k+1 sits at rank k
    assert got["rel_error"] == pytest.approx(max(got["estimate"] - got["lo"], got["hi"] - got["estimate"])
                                             / got["estimate"])
    assert target_met(values, 99, got["rel_error"] + 1e-9, 0.95)
    assert not target_met(values, 99, got["rel_error"] * 0.99, 0.95)
    assert not target_met(values[:100], 99, 10.0, 0.95)  # too few samples for any interval
    assert percentile_interval(values[:100], 99, 0.95)["lo"] is None


def test_stop_record_without_and_with_target() -> None:
    assert stop_record("min_reached") == {"reason": "min_reached", "percentile": None, "interval_ms": None,
                                          "confidence": None, "rel_error": None}
    ns = [1_000_000 + 1000 * (i % 7) for i in range(1000)]
    rec = stop_record("target", ns, P99, checks=3)
    assert rec["reason"] == "target" and rec["percentile"] == 99.0 and rec["confidence"] == 0.95
    lo, hi = rec["interval_ms"]
    assert lo <= rec["estimate_ms"] <= hi and 1.0 <= lo and hi <= 1.006
    assert rec["rel_error"] <= 0.02 and rec["checks"] == 3
    short = stop_record("max_iters", ns[:50], P99)
    assert short["interval_ms"] is None and short["rel_error"] is None and short["percentile"] == 99.0


def test_check_schedule() -> None:
    assert check_every(10) == 50 and check_every(500) == 50 and check_every(5000) == 500


def fixed_fn(latency_s: float = 0.0):  # noqa: ANN201
    rt = SleepRuntime({"latency_ms": latency_s * 1e3})
    rt.prepare(np.zeros((1, 3), np.float32))
    return rt.infer_fn()


def test_target_loop_stops_on_the_target_after_the_minimums() -> None:
    samples, window_ns, reason, checks = target_loop(fixed_fn(0.0005), 400, 0.3, None, Deadline(30),
                                                     TargetSettings(99.0, 0.5, 0.95))
    assert reason == "target" and checks >= 1
    assert len(samples) >= 400 and window_ns >= 300_000_000  # min_iters AND min_s came first
    assert len(samples) < 10_000


def test_target_loop_min_iters_is_honoured_even_when_min_s_is_met() -> None:
    samples, _, reason, _ = target_loop(fixed_fn(0.0), 2000, 0.0, None, Deadline(30), TargetSettings(99.0, 5.0, 0.9))
    assert reason == "target" and len(samples) >= 2000


def test_target_loop_is_capped_by_max_iters_even_before_the_minimums() -> None:
    samples, _, reason, checks = target_loop(fixed_fn(0.0), 10**6, 60.0, 123, Deadline(30), P99)
    assert (len(samples), reason, checks) == (123, "max_iters", 0)


def test_a_target_never_met_stops_on_its_time_budget_not_a_failure() -> None:
    """No max_iters: the window ends at TARGET_TIME_SHARE of the time left, reason timeout."""
    t0 = time.perf_counter()
    deadline = Deadline(1.5)
    samples, window_ns, reason, checks = target_loop(fixed_fn(0.0005), 10, 0.05, None, deadline,
                                                     TargetSettings(99.0, 1e-9, 0.95), time_share=0.5)
    took = time.perf_counter() - t0
    assert reason == "timeout" and checks >= 1
    assert 0.7 <= took <= 1.1  # half of the ~1.5 s left, well before the deadline
    rec = stop_record(reason, samples, TargetSettings(99.0, 1e-9, 0.95), checks)
    assert rec["interval_ms"] is not None and rec["rel_error"] > 1e-9  # still reported


def test_a_spent_budget_takes_one_last_look_at_the_target() -> None:
    """The budget (10% of 1 s) is gone before min_s (0.2 s) is met: the window stops then, on
    the target if the samples already meet it."""
    samples, window_ns, reason, checks = target_loop(fixed_fn(0.0005), 10, 0.2, None, Deadline(1.0),
                                                     TargetSettings(90.0, 5.0, 0.9), time_share=0.1)
    assert (reason, checks) == ("target", 1) and window_ns >= 200_000_000


def test_the_deadline_still_fails_a_target_window_whose_minimums_cannot_be_met() -> None:
    with pytest.raises(MeasurementError, match="timed out after 0.3 s in phase timed"):
        target_loop(fixed_fn(0.001), 10**6, 60.0, None, Deadline(0.3), P99)


def test_the_check_is_outside_the_clock_reads_and_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def slow_check(samples, q, rel, conf):  # noqa: ANN001, ANN202
        calls.append(len(samples))
        time.sleep(0.05)
        return len(calls) == 4

    monkeypatch.setattr(loops, "target_met", slow_check)
    t0 = time.perf_counter_ns()
    samples, window_ns, reason, checks = target_loop(fixed_fn(0.0), 100, 0.0, None, Deadline(30), P99)
    wall_ns = time.perf_counter_ns() - t0
    assert reason == "target" and checks == 4 and calls == [100, 150, 200, 250]
    assert len(samples) == 250
    assert max(samples) < 40_000_000  # no 50 ms check inside any sample
    assert wall_ns - window_ns >= 4 * 50_000_000  # the checks' time is not in the window
    assert window_ns < 4 * 50_000_000


def test_no_target_keeps_the_fast_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("target_loop used without a target")

    monkeypatch.setattr("devices.agent.measure.target_loop", forbidden)
    rc, events = run_inprocess(tmp_path, sleep_spec(tmp_path))
    res = events[-1]
    assert rc == 0 and res["stop"] == {"reason": "min_reached", "percentile": None, "interval_ms": None,
                                       "confidence": None, "rel_error": None}
    rc, events = run_inprocess(tmp_path, sleep_spec(tmp_path, measure={"max_iters": 5, "min_s": 10}))
    assert rc == 0 and events[-1]["stop"]["reason"] == "max_iters" and events[-1]["latency"]["n"] == 5


def run_inprocess(tmp_path: Path, spec: dict) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def sleep_spec(tmp_path: Path, **over) -> dict:  # noqa: ANN003
    model = tmp_path / "model.bin"
    model.write_bytes(b"not a real model")
    measure = dict({"min_s": 0.1, "min_iters": 20, "warmup_s": 0.02}, **over.pop("measure", {}))
    return lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": 0.2}, measure=measure, **over)


def test_end_to_end_the_result_says_why_the_window_stopped(tmp_path: Path) -> None:
    target = {"percentile": 90, "rel_error": 0.5, "confidence": 0.9}
    rc, events = run_inprocess(tmp_path, sleep_spec(tmp_path, measure={"target": target, "min_s": 0.05}))
    res = events[-1]
    assert rc == 0 and res["event"] == "result", res
    stop = res["stop"]
    assert stop["reason"] == "target" and stop["percentile"] == 90 and stop["confidence"] == 0.9
    lo, hi = stop["interval_ms"]
    assert lo <= res["latency"]["p90_ms"] <= hi and stop["rel_error"] <= 0.5
    assert stop["estimate_ms"] == pytest.approx(res["latency"]["p90_ms"])
    json.dumps(res, allow_nan=False)


def test_end_to_end_a_missed_target_reports_its_interval(tmp_path: Path) -> None:
    target = {"percentile": 99, "rel_error": 1e-9, "confidence": 0.95}
    spec = sleep_spec(tmp_path, measure={"target": target, "max_iters": 500, "min_iters": 20})
    rc, events = run_inprocess(tmp_path, spec)
    stop = events[-1]["stop"]
    assert rc == 0 and stop["reason"] == "max_iters" and events[-1]["latency"]["n"] == 500
    assert stop["interval_ms"] is not None and stop["rel_error"] > 1e-9


def test_spec_target_defaults_and_older_coordinators(tmp_path: Path) -> None:
    base = sleep_spec(tmp_path)
    assert parse_spec(base).measure.target is None  # no key: today's window
    spec = sleep_spec(tmp_path, measure={"target": None})
    assert parse_spec(spec).measure.target is None
    spec = sleep_spec(tmp_path, measure={"target": {"rel_error": 0.05}})
    assert parse_spec(spec).measure.target == TargetSettings(99.0, 0.05, 0.95)


@pytest.mark.parametrize(("target", "needle"), [
    ({"percentile": 100}, "measure.target.percentile must be in (0, 100)"),
    ({"percentile": 0}, "measure.target.percentile must be in (0, 100)"),
    ({"rel_error": 0}, "measure.target.rel_error must be > 0"),
    ({"confidence": 1.0}, "measure.target.confidence must be in (0, 1)"),
    ({"confidence": True}, "measure.target.confidence must be int/float"),
    ({"percentile": "99"}, "measure.target.percentile must be int/float"),
    ({"p": 99}, "unknown spec key measure.target.p"),
    ([99, 0.02], "measure.target must be an object or null"),
])  # fmt: skip
def test_spec_target_errors_name_the_key(tmp_path: Path, target: object, needle: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_spec(sleep_spec(tmp_path, measure={"target": target}))
    assert needle in str(e.value)
