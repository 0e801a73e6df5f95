"""ov-int8: NNCF post-training quantization to OpenVINO IR (.xml + .bin), within 1.5 points of fp32.

The variant pipeline carries one ONNX file per variant, so ``build_variant`` cannot store
this artifact yet: these tests call ``apply`` on the fp32 variant's ONNX file directly.
"""

from __future__ import annotations

import openvino as ov
import pytest
from quant_helpers import F32, ov_accuracy

from harness.variants import RECIPES, build_variant


@pytest.fixture(scope="module")
def ov_int8_xml(digits_source, artifact_cache, tmp_path_factory):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    recipe = RECIPES["ov-int8"].make("ov-int8")
    return recipe.apply(fp32.path, tmp_path_factory.mktemp("ov-int8"), digits_source)


def test_declares_an_openvino_ir_artifact():
    recipe = RECIPES["ov-int8"].make("ov-int8")
    assert recipe.runtimes == frozenset({"openvino"}) and recipe.artifact_format == "openvino-ir"
    assert recipe.stage == "onnx" and recipe.precision == "int8"
    assert set(recipe.tool_versions()) == {"openvino", "nncf"}
    assert recipe.params() == {"num_calibration_samples": 300, "preset": "performance", "fast_bias_correction": True}


def test_writes_xml_and_bin_with_int8_weights(ov_int8_xml):
    assert ov_int8_xml.suffix == ".xml" and ov_int8_xml.is_file()
    assert ov_int8_xml.with_suffix(".bin").is_file()
    model = ov.Core().read_model(str(ov_int8_xml))
    ops = model.get_ops()
    assert any(op.get_type_name() == "FakeQuantize" for op in ops)  # quantized activations
    assert any(op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8 for op in ops)  # int8 weights


@pytest.mark.parametrize("config", [F32, {}], ids=["f32", "default"])
def test_ov_int8_within_1_5_points(config, ov_int8_xml, digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    acc32, _ = ov_accuracy(fp32.path, fp32.eval_path, F32)
    acc8, used = ov_accuracy(ov_int8_xml, digits_source.eval_path, config)
    assert acc8 >= acc32 - 0.015, f"OpenVINO ran ov-int8 in {used}"
