"""``degraded: fail``: a candidate result marked degraded (its variant's outputs past the suite's
fidelity limit) is a regression with the reason, unless its accuracy vouches for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import harness.store
from gate_testlib import CONFIGS, add_run
from harness.cli import main
from harness.config.gate import DEFAULT, Drop, Policy
from harness.gate.evaluate import evaluate

REASON = "cosine 0.013 < 0.95 on output 'sigmoid_0.tmp_0'"
INT8_ORIN, INT8_PI = CONFIGS[1], CONFIGS[3]  # references: CONFIGS[0] (same runtime), CONFIGS[2] (another runtime)


def degraded_verdicts(result) -> dict[tuple, tuple[str, str]]:  # noqa: ANN001
    return {tuple(v.config.values()): (v.verdict, v.note) for v in result.verdicts if v.metric == "degraded"}


@pytest.fixture
def store(tmp_path: Path):  # noqa: ANN201
    with harness.store.open(tmp_path / "h.db") as st:
        yield st


def test_a_degraded_candidate_fails_a_policy_that_asks_and_only_that(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(11)
    base = add_run(store, rng)
    cand = add_run(store, rng, degraded={INT8_ORIN: REASON}, accuracy={INT8_ORIN: 0.90})
    policy = Policy(degraded="fail", accuracy=Drop(max_drop=0.5))
    verdicts = degraded_verdicts(evaluate(store, cand, [base], policy))
    assert verdicts[INT8_ORIN] == ("regression", f"degraded: {REASON}")
    assert {verdicts[c][0] for c in CONFIGS if c != INT8_ORIN} == {"pass"}
    # The default policy does not ask: no verdict on the mark at all.
    assert not degraded_verdicts(evaluate(store, cand, [base], DEFAULT))
    # An override can turn the rule off for some configurations.
    off = Policy(degraded="fail", overrides=({"match": {"variant": "int8"}, "degraded": "ignore"},))
    assert INT8_ORIN not in degraded_verdicts(evaluate(store, cand, [base], off))


def test_a_new_degraded_variant_fails_without_a_baseline(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(12)
    base = add_run(store, rng, missing=(INT8_ORIN,))
    cand = add_run(store, rng, degraded={INT8_ORIN: REASON})
    result = evaluate(store, cand, [base], Policy(degraded="fail", latency_p50={"max_increase": 0.05}))
    assert degraded_verdicts(result)[INT8_ORIN][0] == "regression"
    assert {v.verdict for v in result.verdicts if tuple(v.config.values()) == INT8_ORIN
            and v.metric == "latency_p50"} == {"missing"}


def test_accuracy_within_the_rule_of_the_reference_vouches_for_a_degraded_variant(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(13)
    base = add_run(store, rng)
    # Reference accuracy 0.95 everywhere; int8 on orin drops 0.3 points, int8 on pi (openvino, its
    # reference measured on onnxruntime only) drops 2 points.
    cand = add_run(store, rng, degraded={INT8_ORIN: REASON, INT8_PI: REASON},
                   accuracy={INT8_ORIN: 0.947, INT8_PI: 0.93})
    verdicts = degraded_verdicts(evaluate(store, cand, [base], Policy(degraded="fail", accuracy=Drop(max_drop=0.5))))
    assert verdicts[INT8_ORIN][0] == "pass" and "within 0.5 points of the reference's 95.00%" in verdicts[INT8_ORIN][1]
    assert verdicts[INT8_PI][0] == "regression"
    # Without an accuracy rule, nothing vouches.
    verdicts = degraded_verdicts(evaluate(store, cand, [base], Policy(degraded="fail")))
    assert verdicts[INT8_ORIN][0] == "regression"


def test_the_suites_gate_fails_the_cli_with_the_reason(store, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rng = np.random.default_rng(14)
    gate = {"degraded": "fail", "accuracy": {"max_drop": 0.5}}
    base = add_run(store, rng, gate=gate)
    add_run(store, rng, gate=gate, degraded={INT8_PI: REASON}, accuracy={INT8_PI: 0.5})
    junit = tmp_path / "gate.xml"
    code = main(["gate", "--candidate", "latest", "--baseline", base, "--store", str(store.path),
                 "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1 and "regression" in out and "degraded" in out and "sigmoid_0.tmp_0" in out
    assert 'name="degraded"' in junit.read_text() and "<failure" in junit.read_text()
    stored = store.verdicts()
    assert stored[(stored.metric == "degraded") & (stored.verdict == "regression")].variant.tolist() == ["int8"]
