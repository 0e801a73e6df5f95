"""Candidate run vs baseline (a run, or a tag's recent runs): one verdict per configuration and metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from devices.agent.metrics import BY_GATE
from harness.config.gate import Drop, Increase, Policy
from harness.errors import StoreError
from harness.gate.canary import CanaryWindows, adjusted
from harness.gate.stats import (
    SESSION_NOISE_FLOOR,
    Change,
    Estimate,
    benjamini_hochberg,
    between_runs,
    compare,
    percentile_estimate,
    pooled_variance,
    repeats_estimate,
    run_noise,
)
from harness.canary import CANARY
from harness.store import FINISHED, Store

# A configuration; ``point`` is its operating point (``records.point_label``: scenario, power mode, axes'
# values; "" for a default job), so each point is compared with the same point of the baselines.
CONFIG = ("model", "variant", "device", "runtime", "point")
# board-drift: a regression the board's canary shows too (measured relative to the canary, it is not one)
VERDICTS = ("regression", "board-drift", "improvement", "inconclusive", "missing", "pass")
# metric -> the percentile of the per-iteration samples, or the results column of a per-run value
PERCENTILES = {name: m.percentile for name, m in BY_GATE.items() if m.percentile}
COLUMNS = {name: m.column for name, m in BY_GATE.items() if not m.percentile and not m.points and m.kind != "text"}
# The chains a variant's fidelity is scored against (``harness.coordinator.builds.reference_chains``).
REFERENCE_CHAINS = ("fp32", "as-is", "tflite-fp32", "tflite-as-is")
HISTORY = 5  # baseline runs taken from a tag
NOISE_HISTORY = 20  # runs of the tag whose spread sets the run-to-run noise: five runs see too little of it
# the per-run value of a metric in the results table, for the noise estimate
RUN_VALUE = {name: m.column for name, m in BY_GATE.items() if not m.points}


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
    unstable: str | None = None  # why the candidate's or a baseline's measurement is unstable
    noisy: str | None = None  # why the board was busy while the candidate or a baseline was measured
    board: str | None = None  # the board that measured the candidate
    raw_ratio: float | None = None  # set when the ratio is relative to the board canary: the change without it

    @property
    def label(self) -> str:
        c = self.config
        point = c.get("point")
        return f"{c['model']} [{c['variant']}] on {c['device']}/{c['runtime']}" + (f" @ {point}" if point else "")


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
        run = store.resolve_run(ref)
    except StoreError:
        runs = store.runs(tag=ref)
    else:
        if run == candidate:
            raise StoreError(f"the baseline {ref!r} is the candidate run {candidate} itself; name an earlier run "
                             "or a tag")
        return [run]
    started = store.run_info(candidate)["started"]
    runs = runs[(runs.run != candidate) & runs.status.isin(FINISHED) & (runs.started < started)]  # not interrupted
    if runs.empty:
        raise StoreError(f"no run or tag {ref!r} with a finished run before {candidate} in {store.path}")
    return runs.sort_values("started").run.tolist()[-history:]


def noise_runs(store: Store, ref: str, candidate: str) -> list[str]:
    """The runs whose spread measures run-to-run noise: the tag's last NOISE_HISTORY before the candidate."""
    return baseline_runs(store, ref, candidate, NOISE_HISTORY)


def evaluate(store: Store, candidate: str, baselines: Sequence[str], policy: Policy,
             noise_from: Sequence[str] = (), marks: bool = True) -> GateResult:
    """``noise_from``: runs whose spread per configuration sets the run-to-run noise (default:
    the baselines themselves); never below the floor. ``marks=False`` ignores the results'
    ``unstable`` marks (the error-rate benchmark shows what the rule costs)."""
    reader = _Reader(store, [candidate, *baselines, *noise_from])
    cand = _ok(store, candidate)
    bases = [_ok(store, r) for r in baselines]
    history = [_ok(store, r) for r in noise_from] if noise_from else bases
    result = GateResult(candidate, list(baselines))
    configs = sorted(set(cand) | {c for b in bases for c in b})
    tested: list[Verdict] = []
    for key in configs:
        config = {k: v for k, v in zip(CONFIG, key, strict=True) if k != "point" or v}  # a default job has none
        rules = policy.rules_for(config)
        if rules.pop("degraded", None) == "fail" and key in cand:  # judged on the candidate alone
            result.verdicts.append(_degraded(config, cand[key], _reference(cand, key), rules.get("accuracy")))
        quality_rule = rules.get("accuracy")
        if isinstance(quality_rule, Drop) and quality_rule.reference == "fp32":  # judged on the candidate run alone
            del rules["accuracy"]
            if key in cand and (v := _fp32_quality(config, quality_rule, cand)) is not None:
                result.verdicts.append(v)
        have = [b[key] for b in bases if key in b]
        if key not in cand or not have:
            why = "not measured (or failed) in the candidate" if key not in cand else "no baseline measurement"
            result.verdicts.extend(Verdict(config, m, "missing", note=why) for m in rules)
            continue
        for metric, rule in rules.items():
            v = _verdict(reader, config, metric, rule, cand[key], have, [h[key] for h in history if key in h])
            if v is not None and not marks:
                v.unstable = None
            if v is not None:
                result.verdicts.append(v)
                if v.p is not None:
                    tested.append(v)
    for v, q in zip(tested, benjamini_hochberg([v.p for v in tested]), strict=True):
        v.q = q
        v.verdict = _decide(v, policy.fdr)
        if v.verdict == "pass" and v.raw_ratio is not None and v.threshold is not None \
                and v.raw_ratio > 1 + v.threshold:
            v.verdict = "board-drift"  # past the limit only until the canary's move is taken out
    _board_drift(reader, result, candidate, list(baselines), list(noise_from) or list(baselines))
    return result


def _ok(store: Store, run: str) -> dict[tuple[str, ...], pd.Series]:
    """A run's measured configurations; the canary is the board's yardstick, not a configuration."""
    df = store.results(run=run)
    df = df[(df.status == "ok") & (df.model != CANARY.label)]
    return {tuple(r[c] for c in CONFIG): r for _, r in df.iterrows()}


class _Reader:
    """Per-repeat log percentiles of a result, read once per job (the history is read for every
    metric), and the timed windows of the runs involved, for the canary next to each result."""

    def __init__(self, store: Store, runs: Sequence[str]):
        self.store = store
        self._samples: dict[int, pd.DataFrame] = {}
        self.windows = CanaryWindows(store, runs)

    def _frame(self, row: pd.Series) -> pd.DataFrame:
        job_id = int(row.job_id)
        if job_id not in self._samples:
            self._samples[job_id] = self.store.samples(job_id=job_id)
        return self._samples[job_id]

    def repeat_logs(self, row: pd.Series, q: float) -> list[float]:
        return [float(np.log(np.percentile(g.latency_ms.to_numpy(), q))) for _, g in self._frame(row).groupby("repeat")]

    def estimate(self, row: pd.Series, q: float) -> Estimate:
        """One window: its percentile and the batch-means error of its iterations."""
        return percentile_estimate(self._frame(row).latency_ms.to_numpy(), q)


def _latency(reader: _Reader, q: float, cand: list[pd.Series], bases: list[list[pd.Series]],
             history: list[list[pd.Series]], metric: str) -> Change:
    """Candidate vs baselines for one percentile. Each argument is a run's results for the
    configuration (one row, or several for the canary's first and last windows); a row's
    repeats and rows of one run both count as that run's fresh-process windows."""
    c_logs = [x for r in cand for x in reader.repeat_logs(r, q)]
    b_logs = [[x for r in b for x in reader.repeat_logs(r, q)] for b in bases]
    if len(c_logs) >= 2 and all(len(b) >= 2 for b in b_logs):
        seen = {int(r.job_id) for r in cand} | {int(r.job_id) for b in bases for r in b}
        h_logs = [[x for r in h for x in reader.repeat_logs(r, q)] for h in history]
        h_logs = [h for h, rows in zip(h_logs, history, strict=True) if len(h) >= 2
                  and not {int(r.job_id) for r in rows} & seen]
        within, _ = pooled_variance([c_logs, *b_logs, *h_logs])
        runs = [*b_logs, *h_logs]
        tau = between_runs([float(np.mean(h)) for h in runs], within, float(np.mean([len(h) for h in runs])),
                           SESSION_NOISE_FLOOR)
        return compare(repeats_estimate(c_logs, within), [repeats_estimate(b, within) for b in b_logs], tau)
    c = reader.estimate(cand[0], q)
    b = [reader.estimate(rows[0], q) for rows in bases]
    col = RUN_VALUE[metric]
    spread = [math.log(rows[0][col]) for rows in history if not pd.isna(rows[0][col]) and rows[0][col] > 0]
    return compare(c, b, run_noise(spread if len(spread) >= 3 else [e.log_value for e in b]))


def _verdict(reader: _Reader, config: dict[str, str], metric: str, rule: Increase | Drop, cand: pd.Series,
             bases: list[pd.Series], history: list[pd.Series]) -> Verdict | None:
    if isinstance(rule, Drop):
        return _accuracy(config, rule, cand, bases)
    marks = [str(r.unstable) for r in (cand, *bases) if isinstance(r.get("unstable"), str) and r.unstable]
    noisy = next((str(r.noisy) for r in (cand, *bases) if isinstance(r.get("noisy"), str) and r.noisy), None)
    note, raw_ratio = "", None
    if metric in PERCENTILES and (adj := adjusted(reader.windows, PERCENTILES[metric], cand, bases, history)):
        change, raw_ratio = adj.change, adj.raw_ratio
        yardstick = "its interleaved canary" if adj.interleaved else "the board canary"
        note = f"vs {yardstick} (beta {adj.beta:.2f}, {adj.runs} runs); without it {(raw_ratio - 1) * 100:+.1f}%"
        if adj.usual_cv is not None and _cv(cand) <= adj.usual_cv:
            marks = []  # no noisier than its history usually is: the history's residual spread holds such noise
        if adj.extrapolated:
            marks = [adj.extrapolated, *marks]
    elif metric in PERCENTILES:
        change = _latency(reader, PERCENTILES[metric], [cand], [[r] for r in bases], [[r] for r in history], metric)
    else:
        col = COLUMNS[metric]
        values = [cand[col], *(r[col] for r in bases)]
        if any(pd.isna(x) or x <= 0 for x in values):
            return None  # not measured on this board (no power sensor): nothing to gate
        c, b = Estimate(math.log(cand[col]), 0.0), [Estimate(math.log(r[col]), 0.0) for r in bases]
        spread = [math.log(r[col]) for r in history if not pd.isna(r[col]) and r[col] > 0]
        change = compare(c, b, run_noise(spread if len(spread) >= 3 else [e.log_value for e in b]))
    return Verdict(config, metric, "pass", threshold=rule.max_increase, ratio=change.ratio, ci=change.interval(),
                   p=min(1.0, 2 * min(change.p_increase(), change.p_decrease())), note=note,
                   unstable=marks[0] if marks else None, noisy=noisy, board=_board(cand), raw_ratio=raw_ratio)


def _cv(row: pd.Series) -> float:
    cv = row.get("cv")
    return math.inf if cv is None or pd.isna(cv) else float(cv)


def _board(row: pd.Series) -> str:
    board = row.get("board")
    return str(board) if isinstance(board, str) and board else str(row.device)


def _canaries(store: Store, run: str) -> dict[tuple[str, str], list[pd.Series]]:
    """(board, runtime) -> the run's canary results (first and last)."""
    df = store.results(run=run)
    df = df[(df.status == "ok") & (df.model == CANARY.label)]
    out: dict[tuple[str, str], list[pd.Series]] = {}
    for _, r in df.iterrows():
        out.setdefault((r.device, r.runtime), []).append(r)
    return out


def _board_drift(reader: _Reader, result: GateResult, candidate: str, baselines: list[str], noise: list[str]) -> None:
    """A latency regression the candidate's board canary shows too is that board's drift if,
    measured relative to the canary (the ratio of the two changes), it is within the limit."""
    suspects = [v for v in result.verdicts if v.verdict == "regression" and v.metric in PERCENTILES
                and v.raw_ratio is None]  # a canary-adjusted ratio has the drift taken out already
    if not suspects:
        return
    cand = _canaries(reader.store, candidate)
    bases = [_canaries(reader.store, r) for r in baselines]
    history = [_canaries(reader.store, r) for r in noise if r not in baselines]
    for v in suspects:
        key = (v.board or v.config["device"], v.config["runtime"])
        key = key if key in cand else next((k for k in cand if k[0] == key[0]), key)
        if key not in cand or not all(key in b for b in bases):
            continue
        metric = v.metric
        drift = _latency(reader, PERCENTILES[metric], cand[key], [b[key] for b in bases],
                         [h[key] for h in history if key in h], metric)
        lo, _ = drift.interval()
        if lo <= 1.0:
            continue  # the canary did not move significantly: the regression is the candidate's
        assert v.ratio is not None and v.threshold is not None
        relative = v.ratio / drift.ratio
        note = (f"the canary on {key[0]} moved {(drift.ratio - 1) * 100:+.1f}% too; relative to it the change is "
                f"{(relative - 1) * 100:+.1f}%")
        if relative <= 1 + v.threshold:
            v.verdict, v.note = "board-drift", f"board drift: {note}"
        else:
            v.note = f"{note} (still past the limit)"


def quality(row: pd.Series) -> float:
    """A result's quality: its task metric (``quality``: mAP, mIoU, top-1...) where its model has
    a task, else its top-1 ``accuracy``; NaN when it has neither."""
    for column in ("quality", "accuracy"):
        value = row.get(column)
        if value is not None and not pd.isna(value):
            return float(value)
    return math.nan


def _fp32_quality(config: dict[str, str], rule: Drop, run: dict[tuple[str, ...], pd.Series]) -> Verdict | None:
    """``reference: fp32`` (MLPerf's rule): the candidate's quality against its own run's fp32
    variant of the model on the same device and runtime; None for the fp32 variant itself."""
    key = tuple(config.get(c, "") for c in CONFIG)
    if key[1] in REFERENCE_CHAINS:
        return None
    ref = next((run[k] for k in ((key[0], chain, *key[2:]) for chain in REFERENCE_CHAINS) if k in run), None)
    if ref is None:
        return Verdict(config, "accuracy", "missing", note="no fp32 variant measured on this device and runtime")
    return _accuracy(config, rule, run[key], [ref])


def _accuracy(config: dict[str, str], rule: Drop, cand: pd.Series, bases: list[pd.Series]) -> Verdict | None:
    """The quality metric (``quality``) against the reference's (the baselines' mean, or the
    fp32 variant's): a drop past ``max_drop`` points or below ``min_relative`` of it regresses.
    A fixed eval set through a deterministic runtime has no sampling noise between runs, so
    the change is compared with the limits directly."""
    value = quality(cand)
    base = [q for q in (quality(r) for r in bases) if not math.isnan(q)]
    if math.isnan(value) or not base:
        return None
    ref = float(np.mean(base))
    change = (value - ref) * 100
    name = cand.get("quality_metric") if isinstance(cand.get("quality_metric"), str) else "accuracy"
    note = "points" if name == "accuracy" else f"points of {name}"
    if rule.min_relative is not None and ref > 0:
        note += f"; {value / ref:.4f} of the reference (at least {rule.min_relative:g})"
    improved = rule.max_drop is not None and change > rule.max_drop
    verdict = "regression" if not rule.allows(value, ref) else "improvement" if improved else "pass"
    return Verdict(config, "accuracy", verdict, threshold=rule.max_drop, ratio=change, note=note)


def _reference(run: dict[tuple[str, ...], pd.Series], key: tuple[str, ...]) -> float | None:
    """The run's quality (``quality``) of the reference variant (the one fidelity is scored against)
    for ``key``: on the same device and runtime, else the median over the device's runtimes."""
    model, variant, device, runtime = key[:4]  # its quality at any operating point: the same eval set
    refs = [(k, quality(r)) for k, r in run.items() if k[0] == model and k[1] in REFERENCE_CHAINS
            and k[1] != variant and k[2] == device and not isinstance(r.get("degraded"), str)]
    refs = [(k, q) for k, q in refs if not math.isnan(q)]
    values = [q for k, q in refs if k[3] == runtime] or [q for _, q in refs]
    return float(np.median(values)) if values else None


def _degraded(config: dict[str, str], cand: pd.Series, ref: float | None, rule: object) -> Verdict:
    """``degraded: fail``: a candidate result marked degraded (its outputs past the suite's fidelity
    limit) is a regression, unless its accuracy, measured on the eval set, is within the policy's
    accuracy rule of its reference variant's in the same run: the task metric vouches for it, as
    the report keeps it on its fronts."""
    reason = cand.get("degraded")
    if not isinstance(reason, str) or not reason:
        return Verdict(config, "degraded", "pass")
    acc = quality(cand)
    if isinstance(rule, Drop) and not math.isnan(acc) and ref is not None and rule.allows(acc, ref):
        return Verdict(config, "degraded", "pass", note=f"degraded ({reason}), but its accuracy {acc:.2%} is within "
                       f"{rule.describe()} of the reference's {ref:.2%}")
    return Verdict(config, "degraded", "regression", note=f"degraded: {reason}")


def _decide(v: Verdict, fdr: float) -> str:
    """Significant AND beyond the threshold; beyond it but not significant is inconclusive, and
    so is any comparison with a result its board marked noisy.
    An unstable measurement (CV over 2.5%, or pyperf's rules: docs/measurement.md) only
    counts when the change is far past the threshold: its whole interval beyond it (a
    canary-adjusted comparison lifts the mark when the history was as unstable, see _verdict)."""
    assert v.ratio is not None and v.threshold is not None and v.q is not None
    if v.noisy:  # other load on the board: no confident verdict either way, whatever the numbers say
        v.note = "; ".join(filter(None, [v.note, f"measured on a busy board ({v.noisy})"]))
        return "inconclusive"
    worse, better = v.ratio > 1 + v.threshold, v.ratio < 1 / (1 + v.threshold)
    if not (worse or better):
        return "pass"
    if v.q > fdr:
        return "inconclusive"
    if v.unstable and v.ci is not None:
        far = v.ci[0] > 1 + v.threshold if worse else v.ci[1] < 1 / (1 + v.threshold)
        if not far:
            v.note = "; ".join(filter(None, [v.note, f"unstable ({v.unstable}): the change must clear the limit "
                                                       "with its whole interval"]))
            return "inconclusive"
    return "regression" if worse else "improvement"
