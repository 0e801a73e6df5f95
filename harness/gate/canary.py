"""The board's canary as a control variate: a latency measured next to a fixed model.

A board's speed moves between runs and within one (a VM's neighbours, clocks, heat), and it
moves every model measured at that moment with it: on the 2-vCPU test VM MobileNetV2's p50
moved 3-5% from run to run, while five fresh processes of the same job, seconds apart,
agreed within 1-2%. The canary (a fixed model, ``canary: true``) measured on the same board
next to a result sees that shared part, so the gate compares ``log(latency) - beta *
log(canary)`` instead of the raw latency (CUPED, a control variate):

- a result's covariate is its own canary when the canary was interleaved with it
  (``canary: {interleaved: true}``: blocks of the canary alternating with the job's in its
  timed window, its percentile kept with each window), else the canary windows on its board
  that closed last before and opened first after each of its windows; averaged over the
  job's windows (log scale). A comparison uses one kind throughout: the candidate's;
- ``beta`` is the least-squares slope of the configuration's log latency on its covariate
  over the gate's history runs, kept within [0, 2]: a model that does not move with the
  canary gets ~0 and its comparison is the raw one;
- the run-to-run noise is the history's residual spread (two parameters fitted, so ``ddof
  = 2``), which holds every source of noise the adjusted value still has, so the candidate
  and baselines carry no separate within-run error;
- the comparison is a regression prediction, not a plug-in: ``beta`` is uncertain too (its
  standard error times how far the candidate's covariate is from the baselines' adds to the
  error: a board that moved far in the candidate's run is judged on a less certain slope),
  and the residual spread of ten to twenty runs is itself uncertain (Student's t with the
  fit's degrees of freedom). On the A/A benchmark the plug-in turned a 4.5% move into a +12%
  "regression" with a slope of 1.67 fitted on ten runs;
- a line is only known where the history has been: a candidate whose canary is more than
  ``EXTRAPOLATION_SD`` of the history's spread away from its mean (the board far slower or
  faster than on any usual night) is flagged, and like an unstable measurement it is a
  regression only when its whole interval is past the limit (on the A/A benchmark, a board
  10% slow moved OpenVINO 17% and the canary-based correction left a +7.5% "regression").

Fewer than ``MIN_RUNS`` history runs with a covariate, or a candidate or baseline without
one: no adjustment (the caller falls back to the raw comparison and its run-noise floor).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.gate.stats import Change, Estimate, compare
from harness.canary import CANARY
from harness.store import Store

MIN_RUNS = 10  # history runs with a covariate needed to fit beta and the residual noise
BETA_RANGE = (0.0, 2.0)
# Residual run-to-run spread assumed at least: the smallest the canary-adjusted A/A runs showed here.
ADJUSTED_NOISE_FLOOR = 0.005
# A candidate's covariate this many standard deviations of the history's from their mean is an extrapolation.
EXTRAPOLATION_SD = 3.0


@dataclass(frozen=True)
class Adjusted:
    """A canary-adjusted comparison and what it was adjusted by."""

    change: Change
    raw_ratio: float  # the same comparison without the canary
    beta: float
    runs: int  # history runs the fit used
    usual_cv: float | None  # the history's 90th percentile of the per-inference CV: noise it has seen
    extrapolated: str | None = None  # why the line does not reach the candidate's board state
    interleaved: bool = False  # the covariate is the canary interleaved with each job, not windows next to it


class CanaryWindows:
    """Every timed window of the runs involved, read once: the canary's and the results'."""

    def __init__(self, store: Store, runs: Iterable[str]):
        frames = [f for f in (store.repeats(run=r) for r in dict.fromkeys(runs)) if not f.empty]
        df = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame(columns=["model", "job_id", "run", "board", "started", "finished"]))
        self._jobs = {int(j): g for j, g in df[df.model != CANARY.label].groupby("job_id")}
        canary = df[(df.model == CANARY.label) & df.started.notna() & df.finished.notna()] if frames else df
        self._canary = {key: g.sort_values("finished") for key, g in canary.groupby(["run", "board"])}
        self._memo: dict[tuple[int, int], tuple[tuple[float, float] | None, bool]] = {}

    def pair(self, job_id: int, q: int) -> tuple[float, float] | None:
        """(log value, covariate) of a job: the mean over its windows of their log ``q``-th
        percentile, and of its interleaved canary's or else of the canary windows next to them on
        the same board; None without one."""
        return self._lookup(job_id, q)[0]

    def interleaved(self, job_id: int, q: int) -> bool:
        """Whether the job's covariate is its own interleaved canary."""
        return self._lookup(job_id, q)[1]

    def _lookup(self, job_id: int, q: int) -> tuple[tuple[float, float] | None, bool]:
        key = (job_id, q)
        if key not in self._memo:
            self._memo[key] = self._pair(job_id, f"p{q}_ms")
        return self._memo[key]

    def _pair(self, job_id: int, col: str) -> tuple[tuple[float, float] | None, bool]:
        g = self._jobs.get(job_id)
        if g is None or col not in g or not (g[col].astype(float) > 0).all():
            return None, False
        own = f"canary_{col}"
        if own in g and (g[own].astype(float) > 0).all():  # NaN (a window without it) compares False
            return (float(np.log(g[col].astype(float)).mean()), float(np.log(g[own].astype(float)).mean())), True
        near: list[float] = []
        for run, board, started, finished in zip(g.run, g.board, g.started, g.finished, strict=True):
            mine = self._canary.get((run, board))
            if mine is None or col not in mine or pd.isna(started) or pd.isna(finished):
                continue
            ends, starts = mine.finished.to_numpy(float), mine.started.to_numpy(float)
            before = np.flatnonzero(ends <= started)[-1:]  # the window that closed last before this one
            after = np.flatnonzero(starts >= finished)
            after = after[np.argmin(starts[after])][None] if len(after) else after  # the first to open after it
            near += [math.log(v) for v in mine[col].to_numpy(float)[np.concatenate([before, after])] if v > 0]
        return ((float(np.log(g[col].astype(float)).mean()), float(np.mean(near))) if near else None), False


@dataclass(frozen=True)
class Line:
    """The history's least-squares line of log value on the canary covariate."""

    beta: float  # the slope, within BETA_RANGE
    sd: float  # residual standard deviation (two parameters fitted: ddof = 2)
    cov_mean: float  # the covariate's mean over the history
    cov_ss: float  # sum of squared deviations of the covariate: beta's standard error is sd / sqrt(cov_ss)
    dof: int  # len(pairs) - 2

    @property
    def cov_sd(self) -> float:
        """The covariate's standard deviation over the history (ddof 1)."""
        return math.sqrt(self.cov_ss / (self.dof + 1))


def fit_line(pairs: Sequence[tuple[float, float]]) -> Line:
    """The line through (log value, covariate) pairs; a covariate that never moved gives beta 0."""
    y, c = np.array(pairs, dtype=np.float64).T
    cov_ss = float(np.sum((c - c.mean()) ** 2))
    beta = float(np.clip(np.sum((c - c.mean()) * (y - y.mean())) / cov_ss, *BETA_RANGE)) if cov_ss > 0 else 0.0
    residual = y - beta * c
    sd = math.sqrt(float(np.sum((residual - residual.mean()) ** 2)) / (len(pairs) - 2))
    return Line(beta, sd, float(c.mean()), cov_ss, len(pairs) - 2)


def adjusted(windows: CanaryWindows, q: int, cand: pd.Series, bases: Sequence[pd.Series],
             history: Sequence[pd.Series]) -> Adjusted | None:
    """Candidate vs baselines on ``log(latency) - beta * log(canary)``; None when it cannot be fitted.
    Baselines and history count only with the candidate's kind of covariate (interleaved or not)."""
    kind = windows.interleaved(int(cand.job_id), q)

    def pair(job_id: int) -> tuple[float, float] | None:
        return windows.pair(job_id, q) if windows.interleaved(job_id, q) == kind else None

    c_pair = windows.pair(int(cand.job_id), q)
    b_pairs = [p for p in (pair(int(r.job_id)) for r in bases) if p is not None]
    fit: dict[int, tuple[float, float]] = {}
    cvs: list[float] = []
    for row in (*history, *bases):
        job_id = int(row.job_id)
        if job_id != int(cand.job_id) and job_id not in fit and (p := pair(job_id)) is not None:
            fit[job_id] = p
            cvs.append(float(row.cv) if not pd.isna(row.get("cv")) else math.nan)
    if c_pair is None or len(b_pairs) < len(bases) or len(fit) < MIN_RUNS:
        return None
    line = fit_line(list(fit.values()))
    beta, noise = line.beta, max(ADJUSTED_NOISE_FLOOR, line.sd)
    base_logs, base_cov = np.array(b_pairs, dtype=np.float64).mean(axis=0)
    # beta's error carries into the difference in proportion to how far the covariates are apart
    slope_se = noise / math.sqrt(line.cov_ss) if line.cov_ss > 0 else 0.0
    cand_adj = Estimate(c_pair[0] - beta * c_pair[1], abs(c_pair[1] - base_cov) * slope_se)
    bases_adj = [Estimate(y - beta * c, 0.0) for y, c in b_pairs]
    change = compare(cand_adj, bases_adj, noise, line.dof)
    known = [v for v in cvs if not math.isnan(v)]
    return Adjusted(change, math.exp(c_pair[0] - base_logs), beta, len(fit),
                    float(np.percentile(known, 90)) if known else None, _extrapolation(c_pair[1], line), kind)


def _extrapolation(covariate: float, line: Line) -> str | None:
    """Why the history's line does not reach the candidate's board state, if it does not."""
    away = (covariate - line.cov_mean) / line.cov_sd if line.cov_ss > 0 else 0.0
    if abs(away) <= EXTRAPOLATION_SD:
        return None
    return (f"the board canary is {(math.exp(covariate - line.cov_mean) - 1) * 100:+.1f}% from its usual, "
            f"{abs(away):.0f} sd of the history's: the correction is an extrapolation")
