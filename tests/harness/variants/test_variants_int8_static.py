"""int8-static: calibrated QDQ int8 within a point of fp32, on ORT and OpenVINO (bf16 and f32)."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest
from pydantic import ValidationError
from quant_helpers import F32, onnx_metadata, ort_accuracy, ov_accuracy

from harness.errors import ConfigError, VariantBuildError
from harness.variants import Preset, build_variant
from harness.variants.build import make_recipe
from harness.variants.int8_static import Int8Static

PRESETS = ["int8-static", "int8-static-entropy", "int8-static-percentile"]


def test_int8_static_smaller_and_recorded(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    int8 = build_variant(digits_source, "int8-static", artifact_cache)
    assert int8.precision == "int8" and int8.runtimes is None and int8.opset == 17
    assert "onnxruntime" in int8.tool_versions
    assert int8.macs == fp32.macs  # QDQ keeps Conv/Gemm, fed by DequantizeLinear
    # digits-cnn is 35 kB of weights and 4 kB of graph; QDQ adds ~13 kB of nodes and
    # per-channel scales, so the file shrinks to ~0.8 (the weights to ~0.4).
    assert int8.size_bytes < 0.85 * fp32.size_bytes
    assert onnx_metadata(int8.path)["edge_harness.calibration"] == "minmax on 180 samples of calib.npz"


@pytest.mark.parametrize("chain", PRESETS)
def test_int8_static_within_a_point_on_ort(chain, digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    int8 = build_variant(digits_source, chain, artifact_cache)
    acc32 = ort_accuracy(fp32.path, fp32.eval_path)
    assert acc32 == pytest.approx(digits_source.meta["fp32_accuracy"])
    assert ort_accuracy(int8.path, int8.eval_path) >= acc32 - 0.01


@pytest.mark.parametrize("config", [{}, F32], ids=["default", "f32"])
@pytest.mark.parametrize("activation_type", ["quint8", "qint8"])
def test_openvino_runs_int8_static(activation_type, config, digits_source, artifact_cache):
    """Why int8-static declares ``runtimes = None``: OpenVINO runs its QDQ graphs. One
    exception, by CPU: where OpenVINO's CPU plugin defaults to bf16 (CPUs with AMX/AVX512-BF16),
    QInt8 activations fail to compile ("No suitable implementations") unless the suite asks
    for f32; QUInt8, the recipe's default, compiles everywhere."""
    import openvino as ov

    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    int8 = build_variant(digits_source, "my", artifact_cache,
                         custom={"my": {"kind": "int8-static", "activation_type": activation_type}})
    acc32, _ = ov_accuracy(fp32.path, fp32.eval_path, F32)
    default_bf16 = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name() == "bf16"
    if activation_type == "qint8" and not config and default_bf16:
        with pytest.raises(RuntimeError, match="No suitable implementations"):
            ov_accuracy(int8.path, int8.eval_path, config)
        return
    acc8, used = ov_accuracy(int8.path, int8.eval_path, config)
    assert acc8 >= acc32 - 0.01, f"OpenVINO ran {activation_type} activations in {used}"


def test_calibration_method_changes_the_variant(digits_source, artifact_cache):
    built = {c: build_variant(digits_source, c, artifact_cache) for c in PRESETS}
    assert len({v.variant_id for v in built.values()}) == 3
    # ORT's own entropy settings make it equal minmax byte for byte; ours must not.
    assert len({v.sha256 for v in built.values()}) == 3
    # The options, not the preset name, make the id.
    same = build_variant(digits_source, "mine", artifact_cache,
                         custom={"mine": {"kind": "int8-static", "calibration": "entropy"}})
    assert same.variant_id == built["int8-static-entropy"].variant_id and same.cached


def test_options_are_validated():
    with pytest.raises(ValidationError):
        Preset(Int8Static, calibration="bogus")
    with pytest.raises(ValidationError):
        Preset(Int8Static, num_calibration_samples=0)
    with pytest.raises(ValidationError):
        Preset(Int8Static, weight_type="quint8")
    with pytest.raises(ValidationError):
        Preset(Int8Static, calibration="minmax", percentile=99.9)  # would be ignored: say so
    Preset(Int8Static, calibration="percentile", percentile=99.9)
    with pytest.raises(ConfigError, match="percentile.*calibration: percentile"):
        make_recipe("x", {"kind": "int8-static-entropy", "percentile": 99.0})
    with pytest.raises(ConfigError, match="calib_samples"):
        make_recipe("x", {"kind": "int8-static", "calib_samples": 10})


def test_unknown_nodes_to_exclude_named(digits_source, artifact_cache):
    with pytest.raises(VariantBuildError) as err:
        build_variant(digits_source, "ex", artifact_cache,
                      custom={"ex": {"kind": "int8-static", "nodes_to_exclude": ["nope"]}})
    msg = str(err.value)
    assert msg.startswith("ex: nodes_to_exclude:") and "'nope'" in msg
    assert "/features/features.0/features.0.0/Conv" in msg  # real names to pick from


def test_mobilenet_synthetic_calibration_runs_on_ort(mobilenet_source, artifact_cache, caplog):
    assert mobilenet_source.calib_path is None
    fp32 = build_variant(mobilenet_source, "fp32", artifact_cache)
    with caplog.at_level(logging.WARNING, logger="harness.variants.int8_static"):
        int8 = build_variant(mobilenet_source, "my", artifact_cache,
                             custom={"my": {"kind": "int8-static", "num_calibration_samples": 8}})
    assert int8.cached or "no calibration data" in caplog.text
    calibration = onnx_metadata(int8.path)["edge_harness.calibration"]
    assert calibration.startswith("minmax on 8 synthetic standard-normal samples")
    assert 0.2 * fp32.size_bytes < int8.size_bytes < 0.35 * fp32.size_bytes  # ~a quarter (0.28)
    assert int8.macs == fp32.macs
    xs = np.random.default_rng(1).standard_normal((4, *int8.input_shape), dtype=np.float32)
    sessions = [ort.InferenceSession(str(v.path), providers=["CPUExecutionProvider"]) for v in (fp32, int8)]
    want, got = ([s.run(None, {"input": x})[0].ravel() for x in xs] for s in sessions)
    for w, g in zip(want, got):
        assert g.shape == (1000,) and np.isfinite(g).all()
        assert np.dot(w, g) / (np.linalg.norm(w) * np.linalg.norm(g)) > 0.9  # random weights: measured ~0.977
