"""Summary statistics of one timed window, in pure numpy (no scipy on a board).

Every summary carries its sample count, spread (std, cv) and a confidence interval of the
median, because a number without its spread lies (MEASUREMENT.md, trap 8).
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
