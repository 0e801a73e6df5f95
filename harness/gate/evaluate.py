"""Candidate run vs baseline (a run, or a tag's recent runs): one verdict per configuration and metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.config.gate import Drop, Increase, Policy
from harness.errors import StoreError
from harness.gate.stats import Estimate, benjamini_hochberg, compare, percentile_estimate, run_noise
from harness.store import Store

CONFIG = ("model", "variant", "device", "runtime")
VERDICTS = ("regression", "improvement", "inconclusive", "missing", "pass")
# metric -> the percentile of the per-iteration samples, or the results column of a per-run value
PERCENTILES = {"latency_p50": 50, "latency_p90": 90, "latency_p99": 99}
COLUMNS = {"energy_per_inference": "energy_mj", "peak_memory": "peak_rss_mb"}
HISTORY = 5  # baseline runs taken from a tag
NOISE_HISTORY = 20  # runs of the tag whose spread sets the run-to-run noise: five runs see too little of it
# the per-run value of a metric in the results table, for the noise estimate
RUN_VALUE = {"latency_p50": "p50_ms", "latency_p90": "p90_ms", "latency_p99": "p99_ms", **COLUMNS}


@dataclass
class Verdict:
    config: dict[str, str]
    metric: str
    verdict: str
    threshold: float | None = None  # fraction (max_increase) or points (max_drop)
    ratio: float | None = None  # candidate / baseline (points difference for accuracy)
    ci: tuple[float, float] | None = None
    p: float | None = None
    q: float | None = None
    note: str = ""

    @property
    def label(self) -> str:
        c = self.config
        return f"{c['model']} [{c['variant']}] on {c['device']}/{c['runtime']}"


@dataclass
class GateResult:
    candidate: str
    baselines: list[str]
    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(v.verdict == verdict for v in self.verdicts)


def baseline_runs(store: Store, ref: str, candidate: str, history: int = HISTORY) -> list[str]:
    """A run id (or unique prefix), else a tag: its ``history`` newest finished runs before the candidate."""
    try:
        return [store.resolve_run(ref)]
    except StoreError:
        runs = store.runs(tag=ref)
    started = store.run_info(candidate)["started"]
    runs = runs[(runs.run != candidate) & runs.finished.notna() & (runs.started < started)]
    if runs.empty:
        raise StoreError(f"no run or tag {ref!r} with a finished run before {candidate} in {store.path}")
    return runs.sort_values("started").run.tolist()[-history:]


def noise_runs(store: Store, ref: str, candidate: str) -> list[str]:
    """The runs whose spread measures run-to-run noise: the tag's last NOISE_HISTORY before the candidate."""
    return baseline_runs(store, ref, candidate, NOISE_HISTORY)


def evaluate(store: Store, candidate: str, baselines: Sequence[str], policy: Policy,
             noise_from: Sequence[str] = ()) -> GateResult:
    """``noise_from``: runs whose spread per configuration sets the run-to-run noise (default:
    the baselines themselves); never below the floor."""
    cand = _ok(store, candidate)
    bases = [_ok(store, r) for r in baselines]
    history = [_ok(store, r) for r in noise_from] if noise_from else bases
    result = GateResult(candidate, list(baselines))
    configs = sorted(set(cand) | {c for b in bases for c in b})
    tested: list[Verdict] = []
    for key in configs:
        config = dict(zip(CONFIG, key, strict=True))
        rules = policy.rules_for(config)
        have = [b[key] for b in bases if key in b]
        if key not in cand or not have:
            why = "not measured (or failed) in the candidate" if key not in cand else "no baseline measurement"
            result.verdicts.extend(Verdict(config, m, "missing", note=why) for m in rules)
            continue
        for metric, rule in rules.items():
            v = _verdict(store, config, metric, rule, cand[key], have, [h[key] for h in history if key in h])
            if v is not None:
                result.verdicts.append(v)
                if v.p is not None:
                    tested.append(v)
    for v, q in zip(tested, benjamini_hochberg([v.p for v in tested]), strict=True):
        v.q = q
        v.verdict = _decide(v, policy.fdr)
    return result


def _ok(store: Store, run: str) -> dict[tuple[str, ...], pd.Series]:
    df = store.results(run=run)
    df = df[df.status == "ok"]
    return {tuple(r[c] for c in CONFIG): r for _, r in df.iterrows()}


def _verdict(store: Store, config: dict[str, str], metric: str, rule: Increase | Drop, cand: pd.Series,
             bases: list[pd.Series], history: list[pd.Series]) -> Verdict | None:
    if isinstance(rule, Drop):
        return _accuracy(config, rule, cand, bases)
    if metric in PERCENTILES:
        q = PERCENTILES[metric]
        c = percentile_estimate(_samples(store, cand), q)
        b = [percentile_estimate(_samples(store, r), q) for r in bases]
    else:
        col = COLUMNS[metric]
        values = [cand[col], *(r[col] for r in bases)]
        if any(pd.isna(x) or x <= 0 for x in values):
            return None  # not measured on this board (no power sensor): nothing to gate
        c, b = Estimate(math.log(cand[col]), 0.0), [Estimate(math.log(r[col]), 0.0) for r in bases]
    spread = [math.log(r[RUN_VALUE[metric]]) for r in history if not pd.isna(r[RUN_VALUE[metric]])
              and r[RUN_VALUE[metric]] > 0]
    change = compare(c, b, run_noise(spread if len(spread) >= 3 else [e.log_value for e in b]))
    return Verdict(config, metric, "pass", threshold=rule.max_increase, ratio=change.ratio, ci=change.interval(),
                   p=min(1.0, 2 * min(change.p_increase(), change.p_decrease())))


def _samples(store: Store, row: pd.Series) -> np.ndarray:
    return store.samples(job_id=int(row.job_id)).latency_ms.to_numpy()


def _accuracy(config: dict[str, str], rule: Drop, cand: pd.Series, bases: list[pd.Series]) -> Verdict | None:
    """Accuracy on a fixed eval set by a deterministic runtime has no sampling noise between
    runs: the change in points is compared with the allowed drop directly."""
    base = [r.accuracy for r in bases if not pd.isna(r.accuracy)]
    if pd.isna(cand.accuracy) or not base:
        return None
    change = (cand.accuracy - float(np.mean(base))) * 100
    verdict = "regression" if -change > rule.max_drop else "improvement" if change > rule.max_drop else "pass"
    return Verdict(config, "accuracy", verdict, threshold=rule.max_drop, ratio=change, note="points")


def _decide(v: Verdict, fdr: float) -> str:
    """Significant AND beyond the threshold; beyond it but not significant is inconclusive."""
    assert v.ratio is not None and v.threshold is not None and v.q is not None
    worse, better = v.ratio > 1 + v.threshold, v.ratio < 1 / (1 + v.threshold)
    if not (worse or better):
        return "pass"
    if v.q > fdr:
        return "inconclusive"
    return "regression" if worse else "improvement"
