"""int8-dynamic: smaller, nearly as accurate, and consumable by OpenVINO 2026 on CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from harness.variants import build_variant
from quant_helpers import ort_accuracy


def test_int8_dynamic_smaller_and_accurate(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    int8 = build_variant(digits_source, "int8-dynamic", artifact_cache)
    assert int8.size_bytes < fp32.size_bytes
    assert int8.precision == "int8" and int8.opset == 17 and "onnxruntime" in int8.tool_versions
    assert int8.macs == fp32.macs  # ConvInteger counted like Conv
    acc32, acc8 = ort_accuracy(fp32.path, fp32.eval_path), ort_accuracy(int8.path, int8.eval_path)
    assert acc32 == pytest.approx(digits_source.meta["fp32_accuracy"])
    assert acc8 >= acc32 - 0.02


@pytest.mark.parametrize("model", ["digits", "mobilenet"])
@pytest.mark.parametrize("config", [{}, {"INFERENCE_PRECISION_HINT": "f32"}], ids=["default", "f32"])
def test_openvino_runs_int8_dynamic(model, config, request, artifact_cache):
    """Why int8-dynamic declares ``runtimes = None``: OpenVINO compiles and runs it."""
    import openvino as ov

    source = request.getfixturevalue(f"{model}_source")
    variant = build_variant(source, "int8-dynamic", artifact_cache)
    assert variant.runtimes is None
    x = np.random.default_rng(0).random(variant.input_shape, dtype=np.float32)
    compiled = ov.Core().compile_model(str(variant.path), "CPU", config)
    got = compiled(x)[0]
    want = ort.InferenceSession(str(variant.path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert got.shape == want.shape and np.isfinite(got).all()
    assert int(got.argmax()) == int(want.argmax())
