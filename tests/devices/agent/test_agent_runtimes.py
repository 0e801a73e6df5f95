"""Real runtimes end to end: ONNX Runtime and OpenVINO on a constructed classifier, run as
``python -m devices.agent`` and as the built zipapp, plus the failure paths."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import agent_testlib as lib
import pytest

from devices.agent import PROTOCOL
from devices.agent.cli import main
from devices.agent.runtimes import RUNTIMES, OnnxRuntime, OpenVinoRuntime, get_runtime
from harness.coordinator.bundle import build_agent


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("agent-assets")
    return {
        "model": lib.write_classifier(d / "model.onnx"),
        "eval": lib.make_eval_set(d / "eval.npz", n=362),
        "pyz": build_agent(d / "bundle"),
    }


def check_result(events: list[dict], runtime: str) -> dict:
    assert [e["event"] for e in events] == ["facts"] + ["progress"] * 4 + ["result"]
    facts, res = events[0], events[-1]
    assert facts["runtime"]["name"] == runtime and facts["runtime"]["available"] is True
    assert res["runtime"]["name"] == runtime and res["runtime"]["version"] == facts["runtime"]["version"]
    lat = res["latency"]
    assert lat["n"] == len(res["samples_ns"]) >= 20 and lat["window_s"] >= 0.3
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert res["load_s"] > 0 and res["first_infer_ms"] > 0
    assert res["peak_rss_mb"] > res["rss_before_load_mb"] > 0
    assert res["accuracy"] == 1.0 and res["eval_n"] == 360  # 362 samples, batch 4
    return res


def spec_file(tmp_path: Path, assets: dict, runtime: str, **over) -> str:
    spec = lib.make_spec(assets["model"], runtime=runtime,
                         eval={"path": str(assets["eval"]), "max_samples": None}, **over)
    return str(lib.write_spec(tmp_path, spec))


def test_onnxruntime_via_module(tmp_path: Path, assets: dict) -> None:
    rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", spec_file(tmp_path, assets, "onnxruntime")])
    assert rc == 0, stderr
    res = check_result(events, "onnxruntime")
    assert res["precision"] == "as-model" and res["threads"] == 1
    assert res["runtime"]["options"]["providers"] == ["CPUExecutionProvider"]
    assert "phase timed" in stderr  # logs go to stderr


def test_onnxruntime_via_zipapp(tmp_path: Path, assets: dict) -> None:
    rc, events, stderr = lib.run_agent(
        [str(assets["pyz"]), "measure", spec_file(tmp_path, assets, "onnxruntime", runtime_options={"graph_optimization": "basic"})]
    )
    assert rc == 0, stderr
    res = check_result(events, "onnxruntime")
    assert res["runtime"]["options"]["graph_optimization"] == "basic"


def test_openvino_f32_via_zipapp(tmp_path: Path, assets: dict) -> None:
    spec = spec_file(tmp_path, assets, "openvino", runtime_options={"inference_precision": "f32"})
    rc, events, stderr = lib.run_agent([str(assets["pyz"]), "measure", spec])
    assert rc == 0, stderr
    res = check_result(events, "openvino")
    assert res["precision"] == "f32" and res["threads"] == 1
    assert res["runtime"]["options"]["performance_hint"] == "LATENCY"


def test_openvino_default_precision_is_reported(tmp_path: Path, assets: dict) -> None:
    """With no hint OpenVINO picks its own (bf16 on AMX CPUs); the result must say which."""
    spec = lib.make_spec(assets["model"], runtime="openvino", measure={"threads": None, "min_s": 0.1})
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 0
    res = json.loads(out.getvalue().splitlines()[-1])
    assert res["event"] == "result" and res["accuracy"] is None and res["eval_n"] is None
    assert isinstance(res["precision"], str) and res["precision"] in ("f32", "bf16", "f16")
    assert res["runtime"]["options"]["inference_precision"] is None
    assert isinstance(res["threads"], int) and res["threads"] >= 1


def test_corrupt_model_is_artifact_incompatible(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    spec = lib.write_spec(tmp_path, lib.make_spec(bad))
    rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", str(spec)])  # stdout all JSON
    assert rc == 1
    assert [e["event"] for e in events] == ["facts", "progress", "error"]
    err = events[-1]
    assert err["kind"] == "ArtifactIncompatible" and err["job_id"] == "job-onnxruntime"
    assert "onnxruntime could not load" in err["message"] and "INVALID_PROTOBUF" in err["message"]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_eval_shape_mismatch(tmp_path: Path, assets: dict, runtime: str) -> None:
    import numpy as np

    ev = tmp_path / "wrong.npz"
    np.savez(ev, x=np.zeros((8, 1, 4, 16), np.float32), y=np.zeros(8, np.int64))
    spec = lib.make_spec(assets["model"], runtime=runtime, eval={"path": str(ev), "max_samples": None})
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 1
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    err = events[-1]
    assert err["kind"] == "ArtifactIncompatible"
    assert "[1, 4, 16]" in err["message"] and "[4, 1, 8, 8]" in err["message"]
    assert not lib.by_event(events, "progress")  # rejected before any load or timing


def test_wrong_input_shape_is_artifact_incompatible(tmp_path: Path, assets: dict) -> None:
    spec = lib.make_spec(assets["model"], input={"shape": [1, 3, 8, 8], "dtype": "float32"})
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 1
    err = json.loads(out.getvalue().splitlines()[-1])
    assert err["kind"] == "ArtifactIncompatible" and "[1, 3, 8, 8]" in err["message"]


def test_unknown_runtime_option_names_the_key(tmp_path: Path, assets: dict) -> None:
    spec = lib.make_spec(assets["model"], runtime="openvino", runtime_options={"precision": "f32"})
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 1
    err = json.loads(out.getvalue().splitlines()[-1])
    assert err["kind"] == "ProtocolError" and "'precision'" in err["message"]
    assert "inference_precision" in err["message"]  # and lists the known ones


def test_probe_via_zipapp(assets: dict) -> None:
    rc, events, _ = lib.run_agent([str(assets["pyz"]), "probe", "--runtimes", "onnxruntime,openvino,tensorrt"])
    assert rc == 0 and len(events) == 1
    facts = events[0]
    assert facts["event"] == "facts" and facts["protocol"] == PROTOCOL and facts["agent_version"] == "0.1.0"
    assert facts["python"] == "%d.%d.%d" % sys.version_info[:3] and facts["cpu_count"] >= 1
    rts = facts["runtimes"]
    assert rts["onnxruntime"]["available"] and "CPUExecutionProvider" in rts["onnxruntime"]["devices"]
    assert rts["openvino"]["available"] and "CPU" in rts["openvino"]["devices"]
    assert rts["tensorrt"]["available"] is False and "not importable" in rts["tensorrt"]["reason"]


def test_default_probe_hides_test_runtimes() -> None:
    out = io.StringIO()
    assert main(["probe"], out=out) == 0
    assert set(json.loads(out.getvalue())["runtimes"]) == {"litert", "onnxruntime", "openvino", "tensorrt"}


def test_registry() -> None:
    assert RUNTIMES["onnxruntime"] is OnnxRuntime and get_runtime("openvino") is OpenVinoRuntime
    with pytest.raises(KeyError, match="known: litert, onnxruntime, openvino, sleep"):
        get_runtime("tflite")
    with pytest.raises(ValueError, match="graph_optimization"):
        OnnxRuntime({"graph_optimization": "max"})
    with pytest.raises(ValueError, match="threads"):
        OpenVinoRuntime({}, threads=0)


def test_stdout_is_claimed_from_native_prints() -> None:
    """After claim_stdout, anything written to fd 1 (print, C libraries) lands on stderr."""
    code = (
        "import os\nfrom devices.agent.cli import claim_stdout\n"
        "s = claim_stdout()\nprint('python noise')\nos.write(1, b'native noise\\n')\n"
        "s.write('{\"event\": \"x\"}\\n'); s.flush()\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], cwd=lib.REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout == '{"event": "x"}\n'
    assert "python noise" in proc.stderr and "native noise" in proc.stderr
