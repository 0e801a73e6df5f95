"""Verdicts over runs written through the real store: pass on A/A, regression past the
threshold, inconclusive when the history says the noise is too large, missing, accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import harness.store
from gate_testlib import CONFIGS, add_run
from harness.config.gate import DEFAULT, Policy
from harness.errors import StoreError
from harness.gate import run_gate
from harness.gate.evaluate import baseline_runs, evaluate


def by(result, config: tuple, metric: str) -> str:  # noqa: ANN001
    return next(v.verdict for v in result.verdicts if tuple(v.config.values()) == config and v.metric == metric)


@pytest.fixture
def store(tmp_path: Path):  # noqa: ANN201
    with harness.store.open(tmp_path / "h.db") as st:
        yield st


def test_a_over_a_passes_everything(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    base, cand = add_run(store, rng), add_run(store, rng)
    result = evaluate(store, cand, [base], DEFAULT)
    assert {v.verdict for v in result.verdicts} == {"pass"}
    assert {v.metric for v in result.verdicts} == {"latency_p50", "latency_p99", "peak_memory", "accuracy"}


def test_a_real_slowdown_past_the_threshold_is_a_regression_and_only_there(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    base = add_run(store, rng)
    cand = add_run(store, rng, slow={CONFIGS[1]: 1.15, CONFIGS[2]: 0.8})
    result = evaluate(store, cand, [base], DEFAULT)
    assert by(result, CONFIGS[1], "latency_p50") == "regression"
    assert by(result, CONFIGS[2], "latency_p50") == "improvement"
    assert by(result, CONFIGS[0], "latency_p50") == "pass"
    slow = next(v for v in result.verdicts if tuple(v.config.values()) == CONFIGS[1] and v.metric == "latency_p50")
    assert slow.ci[0] < 1.15 < slow.ci[1] and slow.q <= 0.05


def test_a_noisy_history_makes_a_modest_change_inconclusive(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    history = [add_run(store, rng, run_noise=0.10) for _ in range(5)]
    cand = add_run(store, rng, slow={CONFIGS[0]: 1.12}, run_noise=0.0)
    assert baseline_runs(store, "nightly", cand) == history
    result = evaluate(store, cand, history, DEFAULT)
    assert by(result, CONFIGS[0], "latency_p50") in ("inconclusive", "pass")
    assert "regression" not in {v.verdict for v in result.verdicts}


def test_missing_and_accuracy_and_energy(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    energy = {c: 10.0 for c in CONFIGS}
    base = add_run(store, rng, energy=energy)
    cand = add_run(store, rng, missing=(CONFIGS[3],), accuracy={CONFIGS[0]: 0.94, CONFIGS[1]: 0.947},
                   energy={**energy, CONFIGS[2]: 13.0})
    result = evaluate(store, cand, [base], DEFAULT)
    assert {by(result, CONFIGS[3], m) for m in DEFAULT.rules_for(dict.fromkeys(("model", "variant", "device",
                                                                                 "runtime"), "x"))} == {"missing"}
    assert by(result, CONFIGS[0], "accuracy") == "regression"  # -1.0 point, limit 0.5
    assert by(result, CONFIGS[1], "accuracy") == "pass"  # -0.3 point
    assert by(result, CONFIGS[2], "energy_per_inference") == "regression"  # +30%
    assert by(result, CONFIGS[0], "energy_per_inference") == "pass"


def test_policy_overrides_and_the_suites_own_policy(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(4)
    gate = {"latency_p50": {"max_increase": "5%"}, "overrides": [{"match": {"device": "p*"},
                                                                  "latency_p50": {"max_increase": "50%"}}]}
    base = add_run(store, rng, gate=gate)
    cand = add_run(store, rng, gate=gate, slow={CONFIGS[0]: 1.2, CONFIGS[2]: 1.2})
    result = run_gate(store, cand, base)  # no --policy: the candidate suite's gate
    assert by(result, CONFIGS[0], "latency_p50") == "regression"
    assert by(result, CONFIGS[2], "latency_p50") == "pass"  # pi-* may slow down by 50%
    assert {v.metric for v in result.verdicts} == {"latency_p50"}
    stored = store.verdicts(run=cand)
    assert len(stored) == len(result.verdicts) and set(stored.verdict) == {"regression", "pass"}
    assert stored.baselines.iloc[0] == [base]


def test_a_tag_without_earlier_runs_is_an_error(store) -> None:  # noqa: ANN001
    cand = add_run(store, np.random.default_rng(5), tag="nightly")
    with pytest.raises(StoreError, match="no run or tag 'nightly'"):
        baseline_runs(store, "nightly", cand)


def test_policy_percentages() -> None:
    p = Policy.model_validate({"latency_p99": {"max_increase": "12.5%"}, "peak_memory": {"max_increase": 0.1}})
    rules = p.rules_for({"model": "m", "variant": "v", "device": "d", "runtime": "r"})
    assert rules["latency_p99"].max_increase == pytest.approx(0.125) and rules["peak_memory"].max_increase == 0.1
    with pytest.raises(ValueError, match="percentage"):
        Policy.model_validate({"latency_p50": {"max_increase": "five"}})


def test_the_noise_comes_from_a_longer_history_than_the_baseline(store) -> None:  # noqa: ANN001
    """Five quiet runs can hide a machine that jumps by 10% from night to night; twenty cannot."""
    rng = np.random.default_rng(6)
    history = [add_run(store, rng, run_noise=0.10) for _ in range(20)]
    cand = add_run(store, rng, slow={CONFIGS[0]: 1.12}, run_noise=0.0)
    quiet = [add_run(store, np.random.default_rng(9), run_noise=0.0)]  # one lucky baseline
    alone = evaluate(store, cand, quiet, DEFAULT)
    assert by(alone, CONFIGS[0], "latency_p50") == "regression"
    noisy = evaluate(store, cand, quiet, DEFAULT, noise_from=history)
    assert by(noisy, CONFIGS[0], "latency_p50") in ("inconclusive", "pass")


def _verdict(result, config: tuple, metric: str = "latency_p50"):  # noqa: ANN001, ANN202
    return next(v for v in result.verdicts if tuple(v.config.values()) == config and v.metric == metric)


def test_repeats_carry_the_between_process_noise_into_the_interval(store) -> None:  # noqa: ANN001
    """Five windows in fresh processes whose level moves by 6%: the iterations of one window
    cannot see that noise, the repeats can. A 10% change is no regression on such evidence,
    while a 40% one is."""
    rng = np.random.default_rng(10)
    base = add_run(store, rng, repeats=5, process_noise=0.06, run_noise=0.0)
    cand = add_run(store, rng, repeats=5, process_noise=0.06, run_noise=0.0, slow={CONFIGS[0]: 1.10, CONFIGS[1]: 1.4})
    result = evaluate(store, cand, [base], DEFAULT)
    modest, large = _verdict(result, CONFIGS[0]), _verdict(result, CONFIGS[1])
    assert modest.verdict in ("inconclusive", "pass") and large.verdict == "regression"
    width = modest.ci[1] / modest.ci[0]
    assert 1.08 < width < 1.35  # ~2 x 1.96 x 6% x sqrt(2/5), not the iterations' ~1%
    assert {v.verdict for v in result.verdicts if v.metric == "latency_p50"} <= {"pass", "inconclusive", "regression"}


def test_repeats_with_little_process_noise_detect_a_ten_percent_slowdown(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(11)
    history = [add_run(store, rng, repeats=5, process_noise=0.01, run_noise=0.003) for _ in range(5)]
    cand = add_run(store, rng, repeats=5, process_noise=0.01, run_noise=0.003, slow={CONFIGS[2]: 1.10})
    result = evaluate(store, cand, history, DEFAULT)
    assert _verdict(result, CONFIGS[2]).verdict == "regression"
    assert {_verdict(result, c).verdict for c in (CONFIGS[0], CONFIGS[1], CONFIGS[3])} == {"pass"}


def test_an_unstable_measurement_must_clear_the_limit_with_its_whole_interval(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(12)
    mark = "cv 4.1% > 2.5% (trtexec)"
    base = add_run(store, rng, run_noise=0.0)
    cand = add_run(store, rng, run_noise=0.0, slow={CONFIGS[0]: 1.07, CONFIGS[1]: 1.6},
                   unstable={CONFIGS[0]: mark, CONFIGS[1]: mark})
    result = evaluate(store, cand, [base], DEFAULT)
    near, far = _verdict(result, CONFIGS[0]), _verdict(result, CONFIGS[1])
    assert near.verdict == "inconclusive" and mark in near.note and near.ci[0] < 1.05
    assert far.verdict == "regression"


def test_a_slowdown_the_boards_canary_shows_too_is_board_drift(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(13)
    base = add_run(store, rng, run_noise=0.0, canary={"orin": 1.0, "pi": 1.0})
    cand = add_run(store, rng, run_noise=0.0, canary={"orin": 1.2, "pi": 1.0},
                   slow={CONFIGS[0]: 1.2, CONFIGS[1]: 1.6, CONFIGS[2]: 1.2})
    result = evaluate(store, cand, [base], DEFAULT)
    drift, worse, pi = _verdict(result, CONFIGS[0]), _verdict(result, CONFIGS[1]), _verdict(result, CONFIGS[2])
    assert drift.verdict == "board-drift" and "canary on orin moved +" in drift.note
    assert worse.verdict == "regression" and "still past the limit" in worse.note  # +60% vs the canary's +20%
    assert pi.verdict == "regression"  # pi's canary did not move
    assert not any(v.config["model"] == "canary" for v in result.verdicts)
