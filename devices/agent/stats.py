"""Summary statistics of one timed window, in pure numpy (no scipy on a board).

Every summary carries its sample count, spread (std, cv) and a confidence interval of the
median, because a number without its spread lies (docs/measurement.md, trap 8).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# trtexec reports p90/p95/p99, optimum-benchmark p50/p90/p95/p99: we give the union.
PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: np.ndarray, q: float) -> float:
    """Linear interpolation between order statistics (numpy's default ``linear`` method).

    Written out because ``np.percentile(method=...)`` only exists from numpy 1.22 and
    JetPack 5 boards may carry an older numpy.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile of an empty sample")
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def median_ci_ranks(n: int, confidence: float = 0.95) -> Tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bounding the median's CI.

    Distribution-free: the count of samples below the true median is Binomial(n, 1/2), so
    ``[x_(l), x_(n-1-l)]`` covers it with probability ``1 - 2 * P(B <= l)`` (Conover,
    *Practical Nonparametric Statistics*, 3rd ed., 3.2). We take the largest ``l`` whose
    coverage still reaches ``confidence``. Below n = 6 no pair reaches 95%, and the
    interval falls back to [min, max] (its coverage is then only 1 - 2**(1-n)).
    """
    if n <= 0:
        raise ValueError("confidence interval of an empty sample")
    alpha_half = (1.0 - confidence) / 2.0
    k = np.arange(n + 1, dtype=np.float64)
    # log pmf by the ratio pmf(k+1)/pmf(k) = (n-k)/(k+1): exact, O(n), no gammaln needed.
    steps = np.log(n - k[:-1]) - np.log(k[:-1] + 1.0)
    log_pmf = n * math.log(0.5) + np.concatenate(([0.0], np.cumsum(steps)))
    cdf = np.cumsum(np.exp(log_pmf))
    ok = np.nonzero(cdf <= alpha_half)[0]  # candidate l: P(B <= l) <= alpha/2
    lo = int(ok[-1]) if len(ok) else 0
    lo = min(lo, (n - 1) // 2)
    return lo, n - 1 - lo


def summarize(samples_ns: Sequence[int], window_s: Optional[float] = None) -> Dict[str, object]:
    """Latency summary in milliseconds of per-inference samples in nanoseconds.

    Args:
        samples_ns: one duration per inference, as measured by ``perf_counter_ns``.
        window_s: wall time of the whole timed window; throughput is ``n / window_s``
            (falls back to the sum of the samples when not given).
    """
    n = len(samples_ns)
    if n == 0:
        raise ValueError("no samples to summarize")
    ms = np.sort(np.asarray(samples_ns, dtype=np.float64)) / 1e6
    mean = float(ms.mean())
    std: Optional[float] = float(ms.std(ddof=1)) if n > 1 else None
    cv: Optional[float] = (std / mean if mean > 0 else None) if std is not None else None
    if window_s is None:
        window_s = float(ms.sum()) / 1e3
    lo, hi = median_ci_ranks(n)
    out: Dict[str, object] = {"n": n}
    for q in PERCENTILES:
        out["p%d_ms" % q] = percentile(ms, q)
    out.update(
        mean_ms=mean,
        std_ms=std,
        cv=cv,
        min_ms=float(ms[0]),
        max_ms=float(ms[-1]),
        throughput_ips=n / window_s if window_s > 0 else None,
        window_s=float(window_s),
        p50_ci_ms=[float(ms[lo]), float(ms[hi])],
    )
    return out


def as_int_list(samples_ns: Sequence[int]) -> List[int]:
    """Plain ints for JSON (numpy ints are not JSON serialisable)."""
    return [int(v) for v in samples_ns]


# The ``unstable`` mark. trtexec warns "GPU compute time is unstable, with coefficient of
# variance = X%" when the CV exceeds kUNSTABLE_PERF_REPORTING_THRESHOLD, which is 1.0% in
# TensorRT's samples/common/sampleReporting.cpp (GPU compute time, population std); we
# apply it to host-side per-inference latency, where a CPU's scheduling noise alone is
# above 1%, so the bar is 2.5% (docs/measurement.md, "What a result carries").
CV_LIMIT = 0.025
# pyperf ``format_checks`` (pyperf/_cli.py, "WARNING: the benchmark result may be unstable"):
# the standard deviation is >= 10% of the mean, or the minimum or the maximum is >= 50% away
# from the mean. pyperf applies them to values that each average >= 100 ms of loops, not to
# single calls (one stall of one inference would trip them on every CPU result): given the
# samples, the rules see the means of consecutive chunks of >= PYPERF_VALUE_S each.
PYPERF_STD_LIMIT = 0.10
PYPERF_MINMAX_LIMIT = 0.50
PYPERF_VALUE_S = 0.1


def pyperf_values(samples_ns: Sequence[int], value_s: float = PYPERF_VALUE_S) -> np.ndarray:
    """Means (ms) of consecutive chunks of the window, each lasting >= ``value_s`` (pyperf's
    values); one inference per value when inferences are that long already."""
    x = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if len(x) == 0:
        return x
    per = max(1, int(math.ceil(value_s * 1e3 / max(float(x.mean()), 1e-9))))
    k = len(x) // per
    if k == 0:
        return np.array([float(x.mean())])
    return x[: k * per].reshape(k, per).mean(axis=1)


def unstable_reason(summary: Dict[str, object], samples_ns: Optional[Sequence[int]] = None) -> Optional[str]:
    """Why a window's latencies are unstable (every rule that trips, with its numbers), or
    None. ``summary`` is ``summarize``'s output (mean_ms, std_ms, cv, min_ms, max_ms): the CV
    rule reads it; pyperf's rules read the chunk means of ``samples_ns`` when given (else the
    summary's own spread: values that are already per-process or >= 100 ms each)."""
    mean = summary.get("mean_ms")
    if not isinstance(mean, (int, float)) or mean <= 0:
        return None
    reasons = []
    cv = summary.get("cv")
    if isinstance(cv, (int, float)) and cv > CV_LIMIT:
        reasons.append("CV %.1f%% > %.1f%% (trtexec-style CV rule)" % (cv * 100, CV_LIMIT * 100))
    std, low, high, unit = summary.get("std_ms"), summary.get("min_ms"), summary.get("max_ms"), ""
    if samples_ns is not None:
        values = pyperf_values(samples_ns)
        if len(values) < 2:
            std = low = high = None
        else:
            mean, std, low, high = float(values.mean()), float(values.std(ddof=1)), float(values.min()), float(values.max())
            unit = " over %d values of >= %g s" % (len(values), PYPERF_VALUE_S)
    if isinstance(std, (int, float)) and std >= PYPERF_STD_LIMIT * mean:
        reasons.append("std %.4g ms is %.0f%% of the mean %.4g ms (pyperf: >= %.0f%%%s)"
                       % (std, std / mean * 100, mean, PYPERF_STD_LIMIT * 100, unit))
    for name, value in (("minimum", low), ("maximum", high)):
        if not isinstance(value, (int, float)):
            continue
        off = (value - mean) / mean
        if abs(off) >= PYPERF_MINMAX_LIMIT:
            reasons.append("%s %.4g ms is %.0f%% %s than the mean %.4g ms (pyperf: >= %.0f%%%s)"
                           % (name, value, abs(off) * 100, "greater" if off > 0 else "smaller", mean,
                              PYPERF_MINMAX_LIMIT * 100, unit))
    return "; ".join(reasons) if reasons else None
