"""``harness gate`` end to end: exit codes, JUnit XML, Markdown, --strict, bad policy."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

import harness.store
from gate_testlib import CONFIGS, add_run
from harness.cli import main


def make_store(tmp_path: Path, **cand: object) -> tuple[Path, str, str]:
    db = tmp_path / "h.db"
    rng = np.random.default_rng(7)
    with harness.store.open(db) as st:
        base = add_run(st, rng)
        run = add_run(st, rng, **cand)
    return db, base, run


def test_a_regression_fails_the_gate_with_junit_and_markdown(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db, base, cand = make_store(tmp_path, slow={CONFIGS[1]: 1.3})
    junit, md = tmp_path / "out" / "gate.xml", tmp_path / "out" / "gate.md"
    code = main(["gate", "--candidate", cand, "--baseline", "nightly", "--store", str(db), "--junit", str(junit),
                 "--markdown", str(md)])
    assert code == 1
    out = capsys.readouterr().out
    assert "regression" in out and "digits [int8] on orin/onnxruntime" in out
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "2" and int(suite.get("tests")) >= 12
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert sorted((c.get("classname"), c.get("name")) for c in failed) == [
        ("digits [int8] on orin/onnxruntime", "latency_p50"), ("digits [int8] on orin/onnxruntime", "latency_p99")]
    text = md.read_text()
    assert text.startswith("### gate ") and "| ❌ regression | digits [int8] on orin/onnxruntime | latency_p50 |" in text


def test_a_clean_candidate_passes_and_missing_fails_only_when_strict(tmp_path: Path) -> None:
    db, base, cand = make_store(tmp_path, missing=(CONFIGS[0],))
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db)]) == 0
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db), "--strict"]) == 1


def test_a_bad_policy_file_is_named_with_its_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db, base, cand = make_store(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("latency_p50: {max_increase: 5%}\nlatency_p99: {max_rise: 5%}\n")
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert f"{policy}:2" in err and "latency_p99" in err and "Traceback" not in err


def test_an_unknown_baseline_is_a_usage_error(tmp_path: Path) -> None:
    db, _, cand = make_store(tmp_path)
    assert main(["gate", "--candidate", cand, "--baseline", "weekly", "--store", str(db)]) == 2


def test_a_candidate_that_did_not_finish_never_passes(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db, base, _ = make_store(tmp_path)
    with harness.store.open(db) as st:
        crashed = add_run(st, np.random.default_rng(8), missing=(CONFIGS[0],), finish=False)
    assert main(["gate", "--candidate", crashed, "--baseline", base, "--store", str(db)]) == 1
    assert f"the candidate run {crashed} did not finish (status 'running')" in capsys.readouterr().err


def test_a_baseline_that_is_the_candidate_is_refused(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db, _, cand = make_store(tmp_path)
    assert main(["gate", "--candidate", "latest", "--baseline", "latest", "--store", str(db)]) == 2
    assert f"the baseline 'latest' is the candidate run {cand} itself" in capsys.readouterr().err


def test_a_noisy_boards_result_is_inconclusive_and_fails_only_when_strict(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """A big 'improvement' measured while others used the board's CPUs is no verdict either way."""
    noisy = "other processes used 100.0% of the CPUs (max_other_cpu_pct 25)"
    db, base, cand = make_store(tmp_path, slow={CONFIGS[1]: 0.4}, noisy={CONFIGS[1]: noisy})
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db), "--all"]) == 0
    out = capsys.readouterr().out
    assert "improvement" not in out and "inconclusive" in out and "busy board" in out
    assert main(["gate", "--candidate", cand, "--baseline", base, "--store", str(db), "--strict"]) == 1


def test_outputs_are_written_whole_and_never_through_a_planted_symlink(tmp_path: Path) -> None:
    from harness.gate.outputs import write

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / ".gate.md.tmp").symlink_to(victim)  # the old predictable temp name
    write(tmp_path / "gate.md", "# verdicts\n")
    assert (tmp_path / "gate.md").read_text() == "# verdicts\n" and victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gate.md.tmp", "gate.md", "victim.txt"]
