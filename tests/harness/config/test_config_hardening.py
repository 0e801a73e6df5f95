"""Input that passes YAML but would break a run, or that is not a configuration file at
all, is exit 2 with one line naming the file (and line and key where there is one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(("setting", "needle"), [
    ("lease: {ttl_s: .inf}", "lease.ttl_s: Input should be a finite number"),
    ("lease: {ttl_s: 1e11}", "lease.ttl_s: Input should be less than or equal to 86400"),
    ("faults: {reprobe_s: .inf}", "faults.reprobe_s: Input should be a finite number"),
    ("faults: {grace_s: .inf}", "faults.grace_s: Input should be a finite number"),
    ("measure: {timeout_s: .inf}", "measure.timeout_s: Input should be a finite number"),
    ("measure: {seed: -1}", "measure.seed: Input should be greater than or equal to 0"),
    ("measure: {quiet: {wait_s: .inf}}", "measure.quiet.wait_s: Input should be a finite number"),
    ("measure: {min_s: .nan}", "measure.min_s: Input should be a finite number"),
])  # fmt: skip
def test_numbers_that_would_break_a_run_are_refused_at_load(tmp_path: Path, capsys, setting: str,  # noqa: ANN001
                                                            needle: str) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: x\nmodels: [{{builtin: digits-cnn}}]\n{setting}\n")
    code, err = run(capsys, "sweep", str(suite), "--no-report")
    assert code == 2 and f"s.yaml:3: {needle}" in err and "Traceback" not in err


def test_a_binary_file_is_not_a_suite(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    model = tmp_path / "model.onnx"
    model.write_bytes(bytes(range(128, 256)) * 4)
    code, err = run(capsys, "sweep", str(model))
    assert code == 2 and "model.onnx: not a UTF-8 text file" in err


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: bomb\n")
    code, err = run(capsys, "sweep", str(bomb))
    assert code == 2 and "aliases expand to more than 1,000,000 values" in err


def test_a_few_aliases_still_load(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from harness.config import load_suite

    suite = tmp_path / "s.yaml"
    suite.write_text("name: x\nmodels: [{builtin: digits-cnn}]\nm: &m {min_iters: 50}\nmeasure: *m\n")
    with pytest.raises(Exception, match="unknown key 'm'"):  # the alias resolves; the stray key is refused
        load_suite(suite)


def test_an_inventory_name_that_is_a_list(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    inv = tmp_path / "inv.yaml"
    inv.write_text("devices:\n  - name: [a]\n    kind: local\n    runtimes: [onnxruntime]\n")
    code, err = run(capsys, "inventory", "check", "--inventory", str(inv))
    assert code == 2 and "inv.yaml:2: devices.0.name: Input should be a valid string" in err


def test_a_factory_that_cannot_be_imported_is_exit_2_at_load(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    suite = tmp_path / "s.yaml"
    suite.write_text("name: x\nmodels:\n  - name: f\n    factory: nosuch_pkg.mod:build\n    input_shape: [1, 3]\n")
    code, err = run(capsys, "sweep", str(suite), "--no-report")
    assert code == 2 and "s.yaml:4: models.0.factory: cannot import 'nosuch_pkg.mod:build'" in err


def test_a_nan_timeout_on_the_command_line_is_a_usage_error(capsys) -> None:  # noqa: ANN001
    code, err = run(capsys, "inventory", "check", "--timeout", "nan")
    assert code == 2 and "seconds must be > 0" in err
