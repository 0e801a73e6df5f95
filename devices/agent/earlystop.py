"""Stopping the timed window when the number is known (``measure.target``), in pure numpy.

The interval: distribution-free, from order statistics. For a continuous latency
distribution the count B of samples below its true q-quantile is Binomial(n, q), and the
sorted samples ``x[0] <= ... <= x[n-1]`` give

    P(x[lo] <= true quantile <= x[hi]) = P(lo < B <= hi) = F(hi) - F(lo)

with F the Binomial(n, q) CDF (Conover, *Practical Nonparametric Statistics*, 3rd ed., 3.2;
``stats.median_ci_ranks`` is the q = 1/2 case). We take the equal-tailed pair: ``lo`` the
largest rank with F(lo) <= alpha/2 (the true quantile lies below ``x[lo]`` with probability
at most alpha/2) and ``hi`` the smallest with P(B > hi) <= alpha/2, so the coverage is at
least ``confidence = 1 - alpha``. When no such rank exists within the sample the interval
does not exist yet: p99 at 95% needs n >= 368 (0.99**n <= 0.025), the same kind of floor
as MLPerf LoadGen's early-stopping minimum query counts (it uses the binomial the same way,
one-sided, to bound the percentile from the count of slow queries).

The stop rule: with ``est`` the percentile as the result reports it (linear interpolation,
``stats.percentile``), the window may stop once the interval exists and BOTH of its ends
lie within ``rel_error`` of the estimate:

    est * (1 - rel_error) <= x[lo]   and   x[hi] <= est * (1 + rel_error),

i.e. the achieved relative error ``max(est - x[lo], x[hi] - est) / est`` is at most
``rel_error``. This is stricter than a symmetric half-width: a long upper tail (a p99 whose
``x[hi]`` is still the sample maximum) keeps the window going until enough samples pull the
upper rank below the stragglers.

The check costs a partition of the samples plus an O(n) binomial table, so the timed loop
runs it only every ``check_every(n)`` iterations, between two iterations and outside their
clock reads (``measure.target_loop``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

# Check the interval every max(CHECK_MIN, n // CHECK_FRACTION) iterations: the sort's cost
# stays a few per cent of the loop's, and the window overshoots the moment the target is met
# by at most ~10%.
CHECK_MIN = 50
CHECK_FRACTION = 10


def check_every(n: int) -> int:
    """Iterations until the next interval check, ``n`` samples taken so far."""
    return max(CHECK_MIN, n // CHECK_FRACTION)


def binomial_tails(n: int, p: float) -> Tuple[np.ndarray, np.ndarray]:
    """(cdf, sf) of Binomial(n, p) over k = 0..n: ``cdf[k] = P(B <= k)``, ``sf[k] = P(B > k)``.

    The log pmf is built by the ratio pmf(k+1)/pmf(k) = (n-k)/(k+1) * p/(1-p) (exact, O(n),
    no gammaln, no scipy), shifted to its maximum before exponentiating so large n does not
    underflow, and normalised. ``sf`` is summed from the top so small upper tails keep their
    precision (1 - cdf would not).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1), got %r" % (p,))
    k = np.arange(n, dtype=np.float64)
    steps = np.log(n - k) - np.log(k + 1.0) + (math.log(p) - math.log1p(-p))
    log_pmf = n * math.log1p(-p) + np.concatenate(([0.0], np.cumsum(steps)))
    pmf = np.exp(log_pmf - log_pmf.max())
    pmf /= pmf.sum()
    cdf = np.cumsum(pmf)
    sf = np.concatenate((np.cumsum(pmf[::-1])[::-1][1:], [0.0]))
    return cdf, sf


def quantile_ci_ranks(n: int, q: float, confidence: float = 0.95) -> Optional[Tuple[int, int]]:
    """0-based ranks (lo, hi) of the order statistics bounding the q-quantile (q in (0, 1))
    with coverage >= ``confidence``; None when ``n`` samples cannot reach it yet."""
    if n <= 0:
        raise ValueError("confidence interval of an empty sample")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1), got %r" % (confidence,))
    alpha_half = (1.0 - confidence) / 2.0
    cdf, sf = binomial_tails(n, q)
    lows = np.nonzero(cdf[:n] <= alpha_half)[0]
    highs = np.nonzero(sf[:n] <= alpha_half)[0]
    if not len(lows) or not len(highs):
        return None
    return int(lows[-1]), int(highs[0])


def coverage(n: int, q: float, lo: int, hi: int) -> float:
    """P(x[lo] <= true q-quantile <= x[hi]) = F(hi) - F(lo) for 0-based ranks."""
    cdf, _ = binomial_tails(n, q)
    return float(cdf[hi] - cdf[lo])


def min_samples(q: float, confidence: float = 0.95) -> int:
    """The smallest n for which the interval exists (both tails of alpha/2 reachable)."""
    alpha_half = (1.0 - confidence) / 2.0
    # The binding tail is the one toward the nearer end: P(B = n) = q**n or P(B = 0) = (1-q)**n.
    return int(math.ceil(math.log(alpha_half) / math.log(max(q, 1.0 - q))))


def percentile_interval(samples: Sequence[float], percentile: float, confidence: float) -> Dict[str, Any]:
    """The percentile (0-100) of ``samples``, its interval and the achieved relative error.

    ``{"estimate", "lo", "hi", "rel_error", "ranks"}`` in the samples' unit; ``lo``, ``hi``,
    ``rel_error`` and ``ranks`` are None when the interval does not exist yet. A partition,
    not a sort: only the four order statistics needed are put in place.
    """
    n = len(samples)
    if n == 0:
        raise ValueError("percentile of an empty sample")
    values = np.asarray(samples, dtype=np.float64)
    pos = (n - 1) * percentile / 100.0
    i0 = int(math.floor(pos))
    i1 = min(i0 + 1, n - 1)
    ranks = quantile_ci_ranks(n, percentile / 100.0, confidence)
    kth = sorted({i0, i1} | (set(ranks) if ranks else set()))
    part = np.partition(values, kth)
    est = float(part[i0] + (part[i1] - part[i0]) * (pos - i0))
    out: Dict[str, Any] = {"estimate": est, "lo": None, "hi": None, "rel_error": None, "ranks": None}
    if ranks is not None:
        lo, hi = float(part[ranks[0]]), float(part[ranks[1]])
        rel = max(est - lo, hi - est) / est if est > 0 else None
        out.update(lo=lo, hi=hi, rel_error=rel, ranks=list(ranks))
    return out


def target_met(samples: Sequence[float], percentile: float, rel_error: float, confidence: float) -> bool:
    """The stop rule of the module docstring."""
    got = percentile_interval(samples, percentile, confidence)
    return got["rel_error"] is not None and got["rel_error"] <= rel_error


def stop_record(reason: str, samples_ns: Optional[Sequence[float]] = None, target: Any = None,
                checks: int = 0) -> Dict[str, Any]:
    """The result's ``stop`` object: why the window ended and, with a target, the interval
    of the final samples (reported whether or not the target was met)."""
    out: Dict[str, Any] = {"reason": reason, "percentile": None, "interval_ms": None, "confidence": None,
                           "rel_error": None}
    if target is None or not samples_ns:
        return out
    got = percentile_interval(samples_ns, target.percentile, target.confidence)
    out.update(percentile=target.percentile, confidence=target.confidence, rel_error=got["rel_error"],
               target_rel_error=target.rel_error, estimate_ms=got["estimate"] / 1e6, checks=checks,
               interval_ms=None if got["lo"] is None else [got["lo"] / 1e6, got["hi"] / 1e6])
    return out
