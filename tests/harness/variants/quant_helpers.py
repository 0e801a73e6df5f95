"""Accuracy of a built artifact on a digits-style eval set, with ONNX Runtime, OpenVINO or LiteRT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def _eval_set(eval_path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(eval_path) as f:
        return f["x"], f["y"]


def ort_accuracy(path: Path, eval_path: Path) -> float:
    import onnxruntime as ort

    x, y = _eval_set(eval_path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    preds = [int(sess.run(None, {name: x[i : i + 1]})[0].argmax()) for i in range(len(y))]
    return float(np.mean(np.array(preds) == y))


def ov_accuracy(path: Path, eval_path: Path, config: dict) -> tuple[float, str]:
    """Top-1 accuracy and the inference precision OpenVINO actually used ("bf16", "f32")."""
    import openvino as ov

    x, y = _eval_set(eval_path)
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    preds = [int(compiled(x[i : i + 1])[0].argmax()) for i in range(len(y))]
    used = compiled.get_property("INFERENCE_PRECISION_HINT")
    return float(np.mean(np.array(preds) == y)), used.get_type_name()


def litert_accuracy(path: Path, eval_path: Path, batch: int = 1) -> float:
    """Through the agent's runtime, which quantizes int8 inputs and transposes NCHW data for
    an NHWC model as it does on a board."""
    from devices.agent.runtimes.litert import LiteRtRuntime

    runtime = LiteRtRuntime({}, 1)
    runtime.load(str(path))
    x, y = _eval_set(eval_path)
    try:
        preds = [int(np.argmax(runtime.run(x[i : i + batch]))) for i in range(0, len(x) - batch + 1, batch)]
    finally:
        runtime.close()
    return float(np.mean(np.array(preds) == y[: len(preds)]))


def onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
