"""Statistics of the timed window and memory readings: pure functions, known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devices.agent.memory import parse_proc_status, read_memory
from devices.agent.stats import median_ci_ranks, percentile, summarize


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentiles_match_numpy_linear(n: int) -> None:
    values = np.sort(np.random.RandomState(n).lognormal(size=n))
    for q in (0, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_summary_of_known_samples() -> None:
    samples_ns = [1_000_000, 2_000_000, 3_000_000, 4_000_000]  # 1..4 ms
    s = summarize(samples_ns, window_s=0.5)
    assert s["n"] == 4
    assert s["p50_ms"] == pytest.approx(2.5)
    assert s["mean_ms"] == pytest.approx(2.5)
    assert s["std_ms"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s["cv"] == pytest.approx(s["std_ms"] / 2.5)
    assert (s["min_ms"], s["max_ms"]) == (1.0, 4.0)
    assert s["throughput_ips"] == pytest.approx(8.0)  # 4 inferences in 0.5 s
    assert s["window_s"] == 0.5


def test_single_sample_has_no_spread() -> None:
    s = summarize([5_000_000])
    assert s["std_ms"] is None and s["cv"] is None
    assert s["p50_ci_ms"] == [5.0, 5.0]
    assert s["throughput_ips"] == pytest.approx(200.0)  # window defaults to the sum


@pytest.mark.parametrize("n,ranks", [(10, (1, 8)), (20, (5, 14)), (100, (39, 60)), (1000, (468, 531))])
def test_median_ci_ranks_match_binomial_tables(n: int, ranks: tuple) -> None:
    # 1-based ranks from Conover's table: n=10 -> (2, 9), n=20 -> (6, 15), n=100 -> (40, 61).
    assert median_ci_ranks(n) == ranks


def test_median_ci_has_its_coverage() -> None:
    """Over many normal samples of 51, the CI covers the true median about 95+% of runs."""
    rng = np.random.RandomState(0)
    hits = 0
    for _ in range(2000):
        s = summarize((rng.standard_normal(51) * 1e6 + 1e8).astype(np.int64).tolist())
        lo, hi = s["p50_ci_ms"]
        hits += lo <= 100.0 <= hi
        assert lo <= s["p50_ms"] <= hi
    assert 0.94 <= hits / 2000 <= 0.99


def test_tiny_samples_fall_back_to_range() -> None:
    assert median_ci_ranks(5) == (0, 4)
    assert median_ci_ranks(1) == (0, 0)


def test_parse_proc_status() -> None:
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n"
    assert parse_proc_status(text) == {"peak_mb": 200.0, "rss_mb": 100.0}


def test_memory_falls_back_to_getrusage_without_proc(tmp_path) -> None:
    mem = read_memory(str(tmp_path / "no-such-status"))
    assert mem["source"] == "getrusage" and mem["rss_mb"] is None
    assert mem["peak_mb"] > 1.0


def test_memory_reads_this_process() -> None:
    mem = read_memory()
    assert mem["source"] == "proc"
    assert 0 < mem["rss_mb"] <= mem["peak_mb"] and math.isfinite(mem["peak_mb"])
