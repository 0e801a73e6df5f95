"""fp16: half the weight bytes, float32 in and out, and as accurate as fp32 on ORT and OpenVINO."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from quant_helpers import F32, ort_accuracy, ov_accuracy

from harness.variants import build_variant


def test_fp16_half_the_weights_float32_io(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    fp16 = build_variant(digits_source, "fp16", artifact_cache)
    assert fp16.precision == "fp16" and fp16.runtimes is None and fp16.opset == 17
    assert "onnxruntime" in fp16.tool_versions  # onnxruntime.transformers.float16 converts
    assert (fp16.params, fp16.macs) == (fp32.params, fp32.macs)
    model = onnx.load(str(fp16.path))
    weights = [t for t in model.graph.initializer if len(t.dims) > 1]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    io = [*model.graph.input, *model.graph.output]
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in io)  # keep_io_types
    # digits-cnn holds 35 kB of weights in a 39 kB file: the graph itself does not shrink.
    assert 0.45 * fp32.size_bytes < fp16.size_bytes < 0.7 * fp32.size_bytes


def test_fp16_accuracy_on_ort(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    fp16 = build_variant(digits_source, "fp16", artifact_cache)
    assert ort_accuracy(fp16.path, fp16.eval_path) >= ort_accuracy(fp32.path, fp32.eval_path) - 0.005


@pytest.mark.parametrize("config", [{}, F32], ids=["default", "f32"])
def test_openvino_runs_fp16(config, digits_source, artifact_cache):
    """Why fp16 declares ``runtimes = None``: OpenVINO compiles it under bf16 and f32."""
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    fp16 = build_variant(digits_source, "fp16", artifact_cache)
    acc32, _ = ov_accuracy(fp32.path, fp32.eval_path, F32)
    acc16, used = ov_accuracy(fp16.path, fp16.eval_path, config)
    assert acc16 >= acc32 - 0.005, f"OpenVINO ran fp16 in {used}"


def test_fp16_mobilenet_about_half_size(mobilenet_source, artifact_cache):
    """On a net whose file is nearly all weights, fp16 is half the bytes; outputs stay close."""
    fp32 = build_variant(mobilenet_source, "fp32", artifact_cache)
    fp16 = build_variant(mobilenet_source, "fp16", artifact_cache)
    assert 0.48 * fp32.size_bytes < fp16.size_bytes < 0.53 * fp32.size_bytes
    x = np.random.default_rng(0).standard_normal(fp16.input_shape, dtype=np.float32)
    want, got = (ort.InferenceSession(str(v.path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
                 for v in (fp32, fp16))
    assert got.dtype == np.float32 and int(got.argmax()) == int(want.argmax())
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
