"""The statistics of one comparison: an effect with its standard error, and a p-value.

Latency effects are log ratios of a percentile (candidate over baseline), estimated from
the per-iteration samples. Two sources of noise enter the standard error:

- within a run: consecutive iterations are correlated (caches, clocks, other load), so an
  i.i.d. formula would be far too confident. The samples are cut into contiguous batches
  and the spread of the batches' percentiles gives the error (the batch-means method);
- between runs: a fresh process on a fresh boot lands on other memory, other cores, another
  clock state, and moves every percentile by a few percent however many iterations it ran
  (docs/measurement.md, trap 1). That spread is measured from the baseline's history when there
  is one (the tag's previous runs) and never taken below a floor.

With ``measure.repeats`` the runs carry that between-process spread themselves: each run is
the mean of its repeats' log percentiles, the between-process variance is pooled over the
candidate's, the baselines' and the history's repeats, and only the extra spread between
runs (random effects) is taken from the history, with a smaller floor.

With the board canary measured next to the results, ``harness.gate.canary`` takes the
board's share of the run-to-run spread out first (a control variate).

A regression must be both significant (one-sided test of the effect against zero, with
false-discovery control across every comparison of the gate) and larger than the policy's
threshold, asv's rule of significance AND size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy import stats

BATCHES = 20
# Run-to-run spread assumed when the history cannot show it: the smallest standard deviation
# of a log latency percentile across fresh processes that the A/A benchmark found here.
RUN_NOISE_FLOOR = 0.02
# With repeats, the between-process spread is measured; what stays assumed is the extra
# spread between runs (another night, another boot) beyond it.
SESSION_NOISE_FLOOR = 0.005
_Z = NormalDist()


@dataclass(frozen=True)
class Estimate:
    """A log-scale value with its standard error (both from one run's samples)."""

    log_value: float
    se: float


def percentile_estimate(samples: np.ndarray, q: float, batches: int = BATCHES) -> Estimate:
    """``q``-th percentile of ``samples`` (log) and its batch-means standard error."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0 or not np.all(x > 0):
        raise ValueError("latency samples must be positive and non-empty")
    value = float(np.log(np.percentile(x, q)))
    tail = (100 - q) if q >= 50 else q
    per_batch = max(10, math.ceil(100 / max(tail, 1e-9)))  # a batch must reach its percentile: p99 needs 100
    k = min(batches, len(x) // per_batch)
    if k < 2:
        return Estimate(value, math.inf)
    per_batch = np.log([np.percentile(b, q) for b in np.array_split(x, k)])
    return Estimate(value, float(np.std(per_batch, ddof=1) / math.sqrt(k)))


def repeats_estimate(logs: Sequence[float], within_var: float) -> Estimate:
    """A run measured in several fresh processes: the mean of its repeats' log values, with the
    standard error of that mean from ``within_var``, the between-process variance pooled
    over many runs (five repeats alone would give a poor variance estimate)."""
    return Estimate(float(np.mean(logs)), math.sqrt(within_var / len(logs)))


def pooled_variance(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Variance within groups (each run's repeats) pooled over all groups, and its degrees of freedom."""
    ss, dof = 0.0, 0
    for g in groups:
        if len(g) >= 2:
            x = np.asarray(g, dtype=np.float64)
            ss += float(((x - x.mean()) ** 2).sum())
            dof += len(g) - 1
    return (ss / dof if dof else math.nan), dof


def between_runs(run_means: Sequence[float], within_var: float, repeats: float, floor: float) -> float:
    """Standard deviation of the run-level effect beyond what the repeats explain (random
    effects, method of moments): var(run means) - within_var / repeats, floored."""
    if len(run_means) < 3:
        return floor
    extra = float(np.var(run_means, ddof=1)) - within_var / repeats
    return max(floor, math.sqrt(max(0.0, extra)))


def run_noise(history_logs: Sequence[float], floor: float = RUN_NOISE_FLOOR) -> float:
    """Standard deviation of a log metric across runs, from >= 3 runs of the history, floored."""
    if len(history_logs) >= 3:
        return max(floor, float(np.std(history_logs, ddof=1)))
    return floor


@dataclass(frozen=True)
class Change:
    """Candidate vs baseline on a log scale: ``estimate`` = log(candidate / baseline). ``dof``:
    the degrees of freedom of ``se`` when it comes from a short fitted history (Student's t:
    ten runs' spread is itself uncertain, and the normal tails would claim too much)."""

    estimate: float
    se: float
    dof: float = math.inf

    def _cdf(self, z: float) -> float:
        return _Z.cdf(z) if math.isinf(self.dof) else float(stats.t.cdf(z, self.dof))

    @property
    def ratio(self) -> float:
        return math.exp(self.estimate)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Confidence interval of the ratio."""
        z = _Z.inv_cdf(0.5 + level / 2) if math.isinf(self.dof) else float(stats.t.ppf(0.5 + level / 2, self.dof))
        return math.exp(self.estimate - z * self.se), math.exp(self.estimate + z * self.se)

    def p_increase(self) -> float:
        """One-sided p-value of 'the candidate is larger' (H0: ratio <= 1)."""
        if self.se == 0:
            return 0.0 if self.estimate > 0 else 1.0
        return 1.0 - self._cdf(self.estimate / self.se)

    def p_decrease(self) -> float:
        if self.se == 0:
            return 0.0 if self.estimate < 0 else 1.0
        return self._cdf(self.estimate / self.se)


def compare(candidate: Estimate, baseline: Sequence[Estimate], noise: float, dof: float = math.inf) -> Change:
    """Candidate vs the mean of ``baseline`` runs (one or more), each run carrying ``noise``
    of its own on top of its within-run error; ``dof``: how many degrees of freedom ``noise`` was estimated with."""
    n = len(baseline)
    base = sum(b.log_value for b in baseline) / n
    var_base = (sum(b.se**2 for b in baseline) / n + noise**2) / n
    var_cand = candidate.se**2 + noise**2
    return Change(candidate.log_value - base, math.sqrt(var_cand + var_base), dof)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted q-values, in the input order (a comparison is a discovery when q <= fdr)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out.tolist()
