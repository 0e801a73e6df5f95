"""prune-l1: half the weights exactly zero, same graph size, accuracy kept; sparsity stats."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.errors import ConfigError
from harness.variants import ArtifactCache, build_variant
from harness.variants.build import make_recipe
from harness.variants.onnx_stats import onnx_stats
from quant_helpers import ort_accuracy


def test_prune_l1_50_sparse_and_accurate(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    pruned = build_variant(digits_source, "prune-l1-50", artifact_cache)
    assert fp32.sparsity < 0.01
    assert pruned.sparsity == pytest.approx(0.5, abs=0.05)
    assert pruned.params == fp32.params and pruned.macs == fp32.macs  # unstructured: same shapes
    assert pruned.precision == "fp32" and pruned.runtimes is None and pruned.opset == 17
    assert ort_accuracy(pruned.path, pruned.eval_path) >= ort_accuracy(fp32.path, fp32.eval_path) - 0.03
    # zeros survive int8 weight quantization (symmetric: zero stays zero)
    quant = build_variant(digits_source, "prune-l1-50 > int8-dynamic", artifact_cache)
    assert quant.precision == "int8" and quant.sparsity >= 0.45


def test_prune_l1_is_deterministic(digits_source, artifact_cache, tmp_path):
    first = build_variant(digits_source, "prune-l1-30", artifact_cache)
    again = build_variant(digits_source, "prune-l1-30", ArtifactCache(tmp_path / "other"))
    assert not again.cached and again.variant_id == first.variant_id and again.sha256 == first.sha256
    assert first.sparsity == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize("options", [{"amount": 1.5}, {"amount": 0}, {"amount": 0.5, "finetune_epochs": -1},
                                     {"amount": 0.5, "lr": 0}, {"amount": 0.5, "momentum": 0.9}])
def test_prune_l1_options_rejected(options):
    with pytest.raises(ConfigError, match="option"):
        make_recipe("p", {"kind": "prune-l1", **options})


def test_prune_l1_custom_options_change_the_id(digits_source, artifact_cache):
    a = make_recipe("prune-l1-50", {"kind": "prune-l1-50"})
    b = make_recipe("mine", {"kind": "prune-l1", "amount": 0.5})
    c = make_recipe("mine", {"kind": "prune-l1-50", "finetune_epochs": 5})
    assert a.params() == b.params() != c.params()  # options, not names, identify the step


def _model(weights: dict[str, np.ndarray], nodes: list, inputs: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_sparsity_counts_conv_gemm_matmul_weights_only(tmp_path):
    w = np.ones((2, 1, 2, 2), np.float32)
    w[0] = 0  # 4 of 8 conv weights zero
    b = np.zeros(2, np.float32)  # bias: left out
    gemm_b = np.array([[0, 1], [2, 3]], np.float32)  # 1 of 4 zero
    mm = np.array([[0, 0], [0, 5]], np.int8)  # behind DequantizeLinear: 3 of 4 zero
    other = np.zeros((10,), np.float32)  # an Add constant: not a weight
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("Gemm", ["f", "gemm_b"], ["g"]),
        helper.make_node("DequantizeLinear", ["mm", "scale"], ["mm_f"]),
        helper.make_node("MatMul", ["g", "mm_f"], ["m"]),
        helper.make_node("Add", ["m", "other"], ["y"]),
    ]
    model = _model({"w": w, "b": b, "gemm_b": gemm_b, "mm": mm, "scale": np.array(0.1, np.float32), "other": other},
                   nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    stats = onnx_stats(path)
    assert stats["sparsity"] == pytest.approx((4 + 1 + 3) / (8 + 4 + 4))
    assert set(stats) >= {"params", "macs", "opset", "sparsity"}
