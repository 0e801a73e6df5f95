"""tflite-fp32 / fp16 / int8: real conversion (litert-torch), real quantization
(ai-edge-quantizer) and the real LiteRT interpreter, on the trained digits CNN."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from quant_helpers import litert_accuracy, ort_accuracy

from devices.agent.runtimes.litert import LiteRtRuntime
from harness.config import load_suite
from harness.errors import ConfigError, VariantBuildError
from harness.variants import build_variant
from harness.variants.tflite_file import input_shapes, read_metadata, tflite_stats
from harness.zoo.resolve import resolve_model


def io_details(path: Path) -> tuple[dict, dict]:
    interp = Interpreter(model_path=str(path))
    return interp.get_input_details()[0], interp.get_output_details()[0]


@pytest.fixture(scope="module")
def digits_tflite(digits_source, artifact_cache) -> dict:  # noqa: ANN001
    return {chain: build_variant(digits_source, chain, artifact_cache)
            for chain in ("fp32", "tflite-fp32", "tflite-fp16", "tflite-int8")}


def test_tflite_variants_are_litert_files_with_the_onnx_graphs_statistics(digits_tflite: dict) -> None:
    onnx32 = digits_tflite["fp32"]
    for chain, precision in (("tflite-fp32", "fp32"), ("tflite-fp16", "fp16"), ("tflite-int8", "int8")):
        v = digits_tflite[chain]
        assert v.format == "tflite" and v.path.name == "model.tflite" and v.runtimes == frozenset({"litert"})
        assert v.precision == precision and v.opset is None
        assert {"litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torch"} <= set(v.tool_versions)
        # the same network: the counts agree with the ONNX export's
        assert (v.params, v.macs) == (onnx32.params, onnx32.macs)
    sizes = {c: digits_tflite[c].size_bytes for c in ("tflite-fp32", "tflite-fp16", "tflite-int8")}
    assert sizes["tflite-int8"] < sizes["tflite-fp16"] < sizes["tflite-fp32"]


def test_tflite_fp32_matches_onnx_and_int8_is_within_a_point(digits_tflite: dict, digits_source) -> None:  # noqa: ANN001
    onnx_acc = ort_accuracy(digits_tflite["fp32"].path, digits_source.eval_path)
    acc = {c: litert_accuracy(digits_tflite[c].path, digits_source.eval_path)
           for c in ("tflite-fp32", "tflite-fp16", "tflite-int8")}
    assert acc["tflite-fp32"] == pytest.approx(onnx_acc, abs=1e-9)
    assert acc["tflite-fp16"] >= acc["tflite-fp32"] - 0.005
    assert acc["tflite-int8"] >= acc["tflite-fp32"] - 0.01  # the target: within 1 point of fp32


def test_tflite_int8_has_int8_io_and_records_its_calibration(digits_tflite: dict) -> None:
    path = digits_tflite["tflite-int8"].path
    inp, out = io_details(path)
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert inp["quantization"][0] > 0 and out["quantization"][0] > 0
    meta = read_metadata(path)
    assert meta["edge_harness.calibration"] == "minmax on 180 samples of calib.npz"
    assert meta["edge_harness.recipe"] == "tflite-int8"
    fp16 = io_details(digits_tflite["tflite-fp16"].path)[0]
    assert fp16["dtype"] == np.float32  # float16 weights only; the model is fed float32


def test_layout_is_nhwc_by_default_and_nchw_on_request(digits_source, artifact_cache, digits_tflite) -> None:  # noqa: ANN001
    nchw = build_variant(digits_source, "t-nchw", artifact_cache, custom={"t-nchw": {"kind": "tflite-fp32",
                                                                                     "layout": "nchw"}})
    assert input_shapes(digits_tflite["tflite-fp32"].path) == [(1, 8, 8, 1)]
    assert input_shapes(nchw.path) == [(1, 1, 8, 8)]
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8), dtype=np.float32)
    outs = []
    for path in (digits_tflite["tflite-fp32"].path, nchw.path):
        rt = LiteRtRuntime({}, 1)
        rt.load(str(path))
        outs.append(rt.run(x))
        assert rt.effective()["options"]["layout"] == ("NHWC" if path != nchw.path else "NCHW")
        rt.close()
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_tflite_chains_after_pruning(digits_source, artifact_cache) -> None:  # noqa: ANN001
    v = build_variant(digits_source, "prune-l1 > tflite-int8", artifact_cache)
    assert v.format == "tflite" and v.precision == "int8"
    assert v.sparsity > 0.45  # L1 pruning at 50%: zero weights stay exactly zero in int8


@pytest.mark.parametrize("chain, message", [
    ("tflite-int8 > int8-dynamic", "must be the chain's last step"),
    ("int8-dynamic > tflite-fp32", "cannot follow the onnx-stage recipe"),
])  # fmt: skip
def test_impossible_orders_are_refused_before_building(chain: str, message: str, digits_source, artifact_cache) -> None:  # noqa: ANN001
    with pytest.raises(VariantBuildError, match=message):
        build_variant(digits_source, chain, artifact_cache)


def write_suite(tmp_path: Path, models: str, variants: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(f"""
        name: t
        models:
        {textwrap.indent(textwrap.dedent(models).strip(), '  ')}
        variants: {variants}
        runtimes: [litert]
        """).lstrip())
    return path


def test_an_onnx_only_model_asking_for_tflite_is_a_config_error(tmp_path: Path, digits_tflite: dict) -> None:
    shutil.copy(digits_tflite["fp32"].path, tmp_path / "m.onnx")
    suite = write_suite(tmp_path, "- {name: mine, onnx: m.onnx, input_shape: [1, 1, 8, 8]}", "[fp32, tflite-int8]")
    with pytest.raises(ConfigError) as e:
        load_suite(suite)
    assert "suite.yaml:4" in str(e.value) and e.value.field == "variants.1"
    assert "converting to TFLite needs the torch model, but 'mine' is ONNX-only" in str(e.value)


def test_a_users_tflite_model_is_measured_as_it_is_and_quantized(tmp_path: Path, digits_tflite: dict,
                                                                 digits_source, artifact_cache) -> None:  # noqa: ANN001
    shutil.copy(digits_tflite["tflite-fp32"].path, tmp_path / "mine.tflite")
    shutil.copy(digits_source.eval_path, tmp_path / "eval.npz")  # NCHW data for an NHWC model
    suite = load_suite(write_suite(tmp_path, "- {name: mine, tflite: mine.tflite, eval: eval.npz}",
                                   "[tflite-fp32, tflite-int8]"))
    source = resolve_model(suite.models[0], artifact_cache)
    assert source.kind == "tflite" and not source.has_torch and source.input_shape == (1, 8, 8, 1)
    as_is = build_variant(source, "tflite-fp32", artifact_cache)
    assert as_is.sha256 == digits_tflite["tflite-fp32"].sha256  # the user's bytes, untouched
    int8 = build_variant(source, "tflite-int8", artifact_cache)  # no calibration split: synthetic, logged
    assert io_details(int8.path)[0]["dtype"] == np.int8
    assert "synthetic" in read_metadata(int8.path)["edge_harness.calibration"]
    # the eval set is NCHW, the model NHWC: the runtime transposes from the file's signature
    assert litert_accuracy(as_is.path, tmp_path / "eval.npz") == pytest.approx(
        litert_accuracy(digits_tflite["tflite-fp32"].path, digits_source.eval_path))


def test_a_tflite_model_refuses_onnx_recipes(tmp_path: Path, digits_tflite: dict) -> None:
    shutil.copy(digits_tflite["tflite-fp32"].path, tmp_path / "mine.tflite")
    with pytest.raises(ConfigError, match="'mine' is a .tflite file; its variants are the tflite-"):
        load_suite(write_suite(tmp_path, "- {name: mine, tflite: mine.tflite}", "[fp32]"))
    with pytest.raises(ConfigError, match="needs a torch model, but 'mine' is a .tflite file"):
        load_suite(write_suite(tmp_path, "- {name: mine, tflite: mine.tflite}", "[prune-l1 > tflite-fp32]"))


def test_not_a_tflite_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    with pytest.raises(ConfigError, match="not a TFLite flatbuffer"):
        tflite_stats(tmp_path / "bad.tflite")


def test_without_the_extra_a_tflite_suite_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.variants.base as base

    real = base.find_spec
    monkeypatch.setattr(base, "find_spec", lambda name: None if name == "litert_torch" else real(name))
    suite = write_suite(tmp_path, "- builtin: digits-cnn", "[tflite-int8]")
    with pytest.raises(ConfigError) as e:
        load_suite(suite)
    assert "pip install 'edge-harness[tflite]'" in str(e.value) and "missing: litert_torch" in str(e.value)
    # a suite without tflite variants does not care
    assert load_suite(write_suite(tmp_path, "- builtin: digits-cnn", "[fp32]")).variants == ("fp32",)


def test_a_224px_model_whose_quantized_file_keeps_weights_past_the_flatbuffer(mobilenet_source, artifact_cache) -> None:  # noqa: ANN001
    """ai-edge-quantizer writes a model this size with its constants after the flatbuffer
    (buffer offsets); reading the statistics and tagging the file must keep them."""
    onnx32 = build_variant(mobilenet_source, "fp32", artifact_cache)
    fp16 = build_variant(mobilenet_source, "tflite-fp16", artifact_cache)
    assert fp16.macs == onnx32.macs
    # the converter drops the classifier's all-zero bias (random-weight net): 1 000 of 3.49 M
    assert onnx32.params - fp16.params == 1000
    assert 0.45 < fp16.size_bytes / onnx32.size_bytes < 0.55  # float16 weights: half the bytes
    assert read_metadata(fp16.path)["edge_harness.recipe"] == "tflite-fp16"
    rt = LiteRtRuntime({}, 1)
    rt.load(str(fp16.path))
    x = np.random.default_rng(0).standard_normal(mobilenet_source.input_shape, dtype=np.float32)
    assert np.isfinite(rt.run(x)).all() and rt.effective()["options"]["layout"] == "NHWC"
    rt.close()
