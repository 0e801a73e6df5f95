"""int8-mixed: int8-static with the first Conv and the classifier (or named nodes) left in float."""

from __future__ import annotations

import json

import onnx
import pytest
from pydantic import ValidationError
from quant_helpers import F32, onnx_metadata, ort_accuracy, ov_accuracy

from harness.errors import VariantBuildError
from harness.variants import Preset, build_variant
from harness.variants.int8_mixed import Int8Mixed

FIRST_CONV = "/features/features.0/features.0.0/Conv"
CLASSIFIER = "/classifier/Gemm"


def _weight_is_float(path, node_name: str) -> bool:
    """True when the node's weight (input 1) is a float initializer, not a DequantizeLinear output."""
    graph = onnx.load(str(path)).graph
    node = next(n for n in graph.node if n.name == node_name)
    producers = {o: n.op_type for n in graph.node for o in n.output}
    init = {t.name: t for t in graph.initializer}
    weight = node.input[1]
    return producers.get(weight) != "DequantizeLinear" and init[weight].data_type == onnx.TensorProto.FLOAT


def test_first_last_found_in_the_fp32_graph(digits_source, artifact_cache):
    """The names the tests use are the first Conv and the last Gemm of the exported graph."""
    graph = onnx.load(str(build_variant(digits_source, "fp32", artifact_cache).path)).graph
    assert [n.name for n in graph.node if n.op_type == "Conv"][0] == FIRST_CONV
    assert [n.name for n in graph.node if n.op_type == "Gemm"][-1] == CLASSIFIER


def test_int8_mixed_keeps_first_and_last_in_float(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    mixed = build_variant(digits_source, "int8-mixed", artifact_cache)
    static = build_variant(digits_source, "int8-static", artifact_cache)
    assert mixed.precision == "int8" and mixed.runtimes is None and mixed.macs == fp32.macs
    assert json.loads(onnx_metadata(mixed.path)["edge_harness.kept_float"]) == [FIRST_CONV, CLASSIFIER]
    assert _weight_is_float(mixed.path, FIRST_CONV) and _weight_is_float(mixed.path, CLASSIFIER)
    assert not _weight_is_float(static.path, FIRST_CONV) and not _weight_is_float(static.path, CLASSIFIER)
    middle = "/features/features.2/features.2.0/features.2.0.0/Conv"
    assert not _weight_is_float(mixed.path, middle)  # the rest is quantized
    assert static.size_bytes < mixed.size_bytes < fp32.size_bytes
    assert ort_accuracy(mixed.path, mixed.eval_path) >= ort_accuracy(fp32.path, fp32.eval_path) - 0.01


@pytest.mark.parametrize("config", [{}, F32], ids=["default", "f32"])
def test_openvino_runs_int8_mixed(config, digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    mixed = build_variant(digits_source, "int8-mixed", artifact_cache)
    acc32, _ = ov_accuracy(fp32.path, fp32.eval_path, F32)
    acc, used = ov_accuracy(mixed.path, mixed.eval_path, config)
    assert acc >= acc32 - 0.01, f"OpenVINO ran int8-mixed in {used}"


def test_named_nodes_kept(digits_source, artifact_cache):
    middle = "/features/features.2/features.2.0/features.2.0.0/Conv"
    v = build_variant(digits_source, "mid", artifact_cache,
                      custom={"mid": {"kind": "int8-mixed", "keep_float": [middle]}})
    assert json.loads(onnx_metadata(v.path)["edge_harness.kept_float"]) == [middle]
    assert _weight_is_float(v.path, middle) and not _weight_is_float(v.path, FIRST_CONV)


def test_unknown_node_names_listed(digits_source, artifact_cache):
    with pytest.raises(VariantBuildError) as err:
        build_variant(digits_source, "bad", artifact_cache,
                      custom={"bad": {"kind": "int8-mixed", "keep_float": ["conv1", FIRST_CONV, "fc"]}})
    msg = str(err.value)
    assert msg.startswith("bad: keep_float:") and "'conv1', 'fc'" in msg and FIRST_CONV in msg


def test_keep_float_validated():
    for bad in ("first", (), "first-last,conv"):
        with pytest.raises(ValidationError):
            Preset(Int8Mixed, keep_float=bad)
    assert Int8Mixed({"keep_float": ["a", "b"]}).options.keep_float == ("a", "b")
    assert Int8Mixed().params()["keep_float"] == "first-last"
