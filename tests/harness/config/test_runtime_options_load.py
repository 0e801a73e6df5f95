"""``runtime_options`` are checked against the runtime's own options when the suite loads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.config import load_suite
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]

SUITE = """
name: s
models:
  - builtin: digits-cnn
runtimes: [onnxruntime, openvino]
runtime_options:
  onnxruntime:
    graph_optimization: all
  openvino:
    device: CPU
    inference_precision: f32
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text).lstrip())
    return p


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_suite(path)
    return e.value


def test_good_options_load(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, SUITE))
    assert suite.runtime_options["openvino"] == {"device": "CPU", "inference_precision": "f32"}


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("inference_precision: f32", "inference_precison: f32", 10, "runtime_options.openvino.inference_precison",
         ["unknown runtime_options key 'inference_precison'", "inference_precision"]),
        ("inference_precision: f32", "inference_precision: f64", 10, "runtime_options.openvino.inference_precision",
         ["inference_precision must be one of", "'f64'"]),
        ("graph_optimization: all", "graph_optimization: fastest", 7, "runtime_options.onnxruntime.graph_optimization",
         ["graph_optimization must be one of"]),
        ("graph_optimization: all", "providers: CPUExecutionProvider", 7, "runtime_options.onnxruntime.providers",
         ["providers must be a non-empty list"]),
    ],
)
def test_a_bad_key_or_value_points_at_its_line(
    tmp_path: Path, old: str, new: str, line: int, field: str, words: list[str]
) -> None:
    path = write(tmp_path, SUITE.replace(old, new))
    err = error_of(path)
    assert err.location == f"{path}:{line}"
    assert err.field == field
    assert str(err).startswith(f"{path}:{line}: {field}: ")
    for w in words:
        assert w in str(err)


def test_the_key_is_found_among_good_ones_in_flow_style(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE + "  tensorrt: {precision: fp16, workspace_mb: -1, device: 0}\n")
    err = error_of(path)
    assert err.location == f"{path}:11" and err.field == "runtime_options.tensorrt.workspace_mb"
    assert "workspace_mb must be a positive integer" in str(err)


def test_options_of_a_runtime_the_suite_does_not_list_are_checked_too(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE + "  litert: {xnnpack: maybe}\n")
    err = error_of(path)
    assert err.location == f"{path}:11" and "xnnpack must be true or false" in str(err)


def test_an_unknown_runtime_is_still_named(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE + "  tflight: {}\n")
    err = error_of(path)
    assert err.location == f"{path}:5" and "unknown runtime 'tflight'" in str(err)


def test_tensorrt_int8_with_calibration_loads(tmp_path: Path) -> None:
    """The canary's options (``TensorRtRuntime.canary_options``: fp16, no calibration set) are
    checked too, and a valid int8 job's options make valid canary options."""
    text = SUITE + "  tensorrt: {precision: int8, calibration: /data/calib.npz, calibration_samples: 64}\n"
    suite = load_suite(write(tmp_path, text))
    assert suite.runtime_options["tensorrt"]["precision"] == "int8"


def test_canary_options_that_fail_are_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devices.agent.runtimes import TensorRtRuntime

    monkeypatch.setattr(TensorRtRuntime, "canary_options", classmethod(lambda cls, o: dict(o, precision="fp8")))
    path = write(tmp_path, SUITE + "  tensorrt: {precision: fp16}\n")
    err = error_of(path)
    assert err.location == f"{path}:11" and err.field == "runtime_options.tensorrt"
    assert "canary: runtime_options.precision must be one of" in str(err)


@pytest.mark.parametrize("path", sorted((ROOT / "suites").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_suite_loads(path: Path) -> None:
    load_suite(path)


def test_the_cli_says_it_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE.replace("inference_precision: f32", "inference_precison: f32"))
    harness = Path(sys.executable).with_name("harness")
    cmd = [str(harness)] if harness.exists() else [sys.executable, "-m", "harness.cli"]
    proc = subprocess.run([*cmd, "sweep", str(path), "--store", str(tmp_path / "h.db")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"{path}:10: runtime_options.openvino.inference_precison" in lines[0]
    assert not (tmp_path / "h.db").exists()  # nothing started
