"""Artifact formats: OpenVINO IR (graph + separate weights file) and the runtimes that read it."""

from __future__ import annotations

from pathlib import Path

import agent_testlib as lib


def write_ir(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The test classifier as OpenVINO IR, with the weights file under an unrelated name
    (as the coordinator's content-addressed cache stores it)."""
    import openvino as ov

    onnx = lib.write_classifier(tmp_path / "m.onnx")
    ov.save_model(ov.Core().read_model(str(onnx)), str(tmp_path / "m.xml"), compress_to_fp16=False)
    weights = tmp_path / "0123abcd.bin"
    (tmp_path / "m.bin").rename(weights)
    return onnx, tmp_path / "m.xml", weights


def test_openvino_reads_ir_with_a_separate_weights_file(tmp_path: Path) -> None:
    _, xml, weights = write_ir(tmp_path)
    evals = lib.make_eval_set(tmp_path / "eval.npz")
    spec = lib.make_spec(xml, "openvino", runtime_options={"inference_precision": "f32"},
                         eval={"path": str(evals), "max_samples": None})
    spec["artifact"] = {"path": str(xml), "format": "openvino-ir", "weights": str(weights)}
    code, events, err = lib.run_agent(["-m", "devices.agent", "measure", str(lib.write_spec(tmp_path, spec))])
    assert code == 0, err
    result = lib.by_event(events, "result")[0]
    assert result["accuracy"] == 1.0 and result["latency"]["n"] >= 20


def test_ir_on_onnxruntime_and_a_missing_weights_file_are_incompatible(tmp_path: Path) -> None:
    _, xml, weights = write_ir(tmp_path)
    for runtime, art, words in (
        ("onnxruntime", {"path": str(xml), "format": "openvino-ir", "weights": str(weights)}, "cannot read openvino-ir"),
        ("openvino", {"path": str(xml), "format": "openvino-ir", "weights": str(tmp_path / "gone.bin")}, "gone.bin"),
    ):
        spec = dict(lib.make_spec(xml, runtime), artifact=art)
        code, events, _ = lib.run_agent(["-m", "devices.agent", "measure", str(lib.write_spec(tmp_path, spec))])
        error = lib.by_event(events, "error")[0]
        assert code == 1 and error["kind"] == "ArtifactIncompatible" and words in error["message"], error
