"""``harness gate``: does a candidate run regress against its baseline? Verdicts are stored."""

from __future__ import annotations

import logging
from pathlib import Path

from harness.config.gate import DEFAULT, Policy, load_policy
from harness.errors import GateError, StoreWriteError
from harness.gate.evaluate import GateResult, baseline_runs, evaluate, noise_runs
from harness.store import FINISHED, Store  # statuses of a run whose every job has its result or its reason

log = logging.getLogger("edge_harness.gate")


def policy_for(store: Store, candidate: str, path: Path | None) -> Policy:
    """``--policy FILE``, else the ``gate:`` of the suite the candidate ran, else the default policy."""
    if path is not None:
        return load_policy(path)
    gate = store.run_info(candidate)["config"].get("suite", {}).get("gate")
    return Policy.model_validate(gate) if gate else DEFAULT


def run_gate(store: Store, candidate_ref: str, baseline_ref: str, policy_path: Path | None = None) -> GateResult:
    candidate = store.resolve_run(candidate_ref)
    status = store.run_info(candidate)["status"]
    if status not in FINISHED:  # a crashed, interrupted or running sweep's partial run must not pass on "missing"
        raise GateError(f"the candidate run {candidate} did not finish (status {status!r}): resume it "
                        f"('harness sweep SUITE --resume {candidate}') or gate a finished run")
    result = evaluate(store, candidate, baseline_runs(store, baseline_ref, candidate),
                      policy_for(store, candidate, policy_path), noise_runs(store, baseline_ref, candidate))
    try:
        store.record_verdicts(result.candidate, result.baselines, [
            {**v.config, "metric": v.metric, "verdict": v.verdict, "threshold": v.threshold, "ratio": v.ratio,
             "ci_lo": v.ci[0] if v.ci else None, "ci_hi": v.ci[1] if v.ci else None, "p": v.p, "q": v.q,
             "note": v.note}
            for v in result.verdicts
        ])  # fmt: skip
    except StoreWriteError as e:  # a store on read-only media, or locked: the verdict stands, unrecorded
        log.warning("the gate's verdicts were not stored (the dashboard will not mark them): %s", e)
    return result


__all__ = ["GateResult", "run_gate"]
