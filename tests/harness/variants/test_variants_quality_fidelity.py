"""Fidelity of a variant against its reference, per output: cosine, SNR, max error; agreement
only on class scores; every input of a multi-input model fed; the degraded judgement."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.config.suite import Fidelity, FidelityLimits, Suite
from harness.variants.build import Variant
from harness.variants.quality import SYNTHETIC_SAMPLES, fidelity_problem, reference_quality, variant_record

DEFAULTS = FidelityLimits().model_dump()


def save(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs,
                              [numpy_helper.from_array(w, name) for name, w in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def variant(path: Path, chain: str, input_shape: tuple[int, ...], eval_path: Path | None = None) -> Variant:
    return Variant(model="tiny", chain=chain, variant_id=f"id-{chain}", path=path, sha256="", size_bytes=1, params=0,
                   macs=0, precision="fp32", opset=17, tool_versions={}, build_s=0.0, cached=True, runtimes=None,
                   input_shape=input_shape, eval_path=eval_path)


def two_heads(path: Path, head_weights: np.ndarray, scale: float = 1.0) -> Path:
    """x [1, 16] -> 'logits' [1, 10] (class scores) and 'heat' [1, 6, 20] (a detection-head-shaped map)."""
    rng = np.random.default_rng(7)
    return save(path, [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Mul", ["h", "s"], ["logits"]),
        helper.make_node("MatMul", ["x", "W2"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["heat"]),
    ], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10]),
         helper.make_tensor_value_info("heat", TensorProto.FLOAT, [1, 6, 20])],
        {"W": rng.standard_normal((16, 10)).astype(np.float32), "s": np.array(scale, np.float32),
         "W2": head_weights, "shape": np.array([1, 6, 20], np.int64)})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Variant]:
    tmp = tmp_path_factory.mktemp("fidelity")
    w2 = np.random.default_rng(8).standard_normal((16, 120)).astype(np.float32)
    noise = np.random.default_rng(9).standard_normal((16, 120)).astype(np.float32)  # unrelated weights: noise
    return {
        "ref": variant(two_heads(tmp / "ref.onnx", w2), "fp32", (1, 16)),
        "noise": variant(two_heads(tmp / "noise.onnx", noise), "broken", (1, 16)),
        "halved": variant(two_heads(tmp / "halved.onnx", w2 * 0.5, 0.5), "halved", (1, 16)),
        "close": variant(two_heads(tmp / "close.onnx", w2 + 1e-3 * noise), "close", (1, 16)),
    }


def output(q: dict, name: str) -> dict:
    return next(o for o in q["fidelity"]["outputs"] if o["name"] == name)


def test_a_noise_output_is_degraded_with_the_reason(models: dict[str, Variant]) -> None:
    q = reference_quality(models["noise"], models["ref"])
    logits, heat = output(q, "logits"), output(q, "heat")
    assert logits["cosine"] == pytest.approx(1.0) and logits["snr_db"] == math.inf and logits["max_abs_err"] == 0.0
    assert abs(heat["cosine"]) < 0.5 and heat["snr_db"] < 3 and heat["max_abs_err"] > 1
    # The variant's columns are the worst output's; agreement comes from the class scores only.
    assert q["cosine"] == heat["cosine"] and q["snr_db"] == heat["snr_db"] and q["agreement"] == 1.0
    assert q["fidelity_inputs"] == "synthetic" and q["quality_n"] == SYNTHETIC_SAMPLES
    reason = fidelity_problem(q, **DEFAULTS)
    assert reason is not None and reason.startswith(f"cosine {heat['cosine']:.4g} < 0.95, SNR")
    assert reason.endswith("on output 'heat'") and "logits" not in reason
    record = variant_record(models["noise"], q)
    assert record["snr_db"] == q["snr_db"] and record["fidelity"]["outputs"][1]["name"] == "heat"


def test_agreement_only_for_class_scores_not_for_a_detection_head(models: dict[str, Variant]) -> None:
    q = reference_quality(models["close"], models["ref"])
    assert output(q, "logits")["agreement"] == 1.0
    assert "agreement" not in output(q, "heat")  # argmax over the last axis of [1, 6, 20] means nothing
    assert 0.999 < output(q, "heat")["cosine"] < 1.0 and output(q, "heat")["snr_db"] > 40
    assert fidelity_problem(q, **DEFAULTS) is None


def test_snr_catches_a_scale_error_cosine_cannot_see(models: dict[str, Variant]) -> None:
    q = reference_quality(models["halved"], models["ref"])
    for name in ("logits", "heat"):
        assert output(q, name)["cosine"] == pytest.approx(1.0, abs=1e-6)
        assert output(q, name)["snr_db"] == pytest.approx(10 * math.log10(4), abs=0.01)  # error = half the signal
    reason = fidelity_problem(q, **DEFAULTS)
    assert reason is not None and "cosine" not in reason and "SNR 6.0 dB < 10 dB on output 'logits'" in reason
    assert fidelity_problem(q, min_cosine=0.95, min_snr_db=None) is None  # limits switched off are not checked


def test_the_reference_scores_itself_perfect(models: dict[str, Variant]) -> None:
    q = reference_quality(models["ref"], models["ref"])
    assert q["cosine"] == 1.0 and q["snr_db"] == math.inf and q["max_abs_err"] == 0.0
    assert fidelity_problem(q, min_cosine=1.0, min_snr_db=300, max_abs_err=1e-12) is None
    no_reference = reference_quality(models["noise"], None)
    assert no_reference["cosine"] is None and fidelity_problem(no_reference, **DEFAULTS) is None


def test_a_multi_input_model_gets_every_input_with_its_own_shape_and_dtype(tmp_path: Path,
                                                                         monkeypatch) -> None:  # noqa: ANN001
    """out = a + float(b) for the reference; the variant ignores b. Fed b (int64 0/1 values,
    its own [1, 4] shape), the two differ; were b not fed, or fed zeros, they would agree."""
    from devices.agent.runtimes.onnxruntime import OnnxRuntime

    def model(name: str, use_b: float) -> Path:
        return save(tmp_path / f"{name}.onnx", [
            helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["bf", "k"], ["bk"]),
            helper.make_node("Add", ["a", "bk"], ["out"]),
        ], [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [1, 4])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])], {"k": np.array(use_b, np.float32)})

    fed: list[dict[str, tuple]] = []
    original = OnnxRuntime.run_outputs

    def spy(self, feeds):  # noqa: ANN001, ANN202
        fed.append({k: (v.shape, v.dtype.name, float(np.abs(v).sum())) for k, v in feeds.items()})
        return original(self, feeds)

    monkeypatch.setattr(OnnxRuntime, "run_outputs", spy)
    ref, var = variant(model("ref", 1.0), "fp32", (1, 4)), variant(model("var", 0.0), "drops-b", (1, 4))
    q = reference_quality(var, ref)
    assert len(fed) == 2 * SYNTHETIC_SAMPLES
    assert all(f["a"][:2] == ((1, 4), "float32") and f["b"][:2] == ((1, 4), "int64") for f in fed)
    assert sum(f["b"][2] for f in fed) > SYNTHETIC_SAMPLES  # 0/1 values, not zeros
    assert q["fidelity"]["inputs"] == {"a": "synthetic", "b": "synthetic"}
    assert q["cosine"] < 0.95 and "on output 'out'" in (fidelity_problem(q, **DEFAULTS) or "")
    # An eval set with one array per input feeds both from it (labels: none needed for fidelity).
    rng = np.random.default_rng(3)
    npz = tmp_path / "eval.npz"
    np.savez(npz, a=rng.standard_normal((10, 4)).astype(np.float32), b=np.zeros((10, 4), np.int64),
             y=np.zeros(10, np.int64))
    q = reference_quality(variant(var.path, "drops-b", (1, 4), npz), variant(ref.path, "fp32", (1, 4), npz))
    assert q["fidelity_inputs"] == "eval" and q["fidelity"]["inputs"] == {"a": "eval", "b": "eval"}
    assert q["quality_n"] == 10 and q["cosine"] == pytest.approx(1.0)  # b is all zeros there: they agree


def test_fidelity_limits_per_suite_and_per_model() -> None:
    suite = Suite.model_validate({
        "name": "s", "models": [{"builtin": "digits-cnn"}, {"builtin": "resnet18-224", "name": "det"}],
        "fidelity": {"min_snr_db": 20, "models": {"det": {"min_cosine": 0.99, "min_snr_db": None}}},
    })  # fmt: skip
    assert suite.fidelity_limits.limits_for("digits-cnn") == FidelityLimits(min_cosine=0.95, min_snr_db=20)
    assert suite.fidelity_limits.limits_for("det") == FidelityLimits(min_cosine=0.99, min_snr_db=None)
    assert Suite.model_validate({"name": "s", "models": [{"builtin": "digits-cnn"}]}).fidelity_limits == Fidelity()
    with pytest.raises(ValueError, match="'nope', not a model of this suite"):
        Suite.model_validate({"name": "s", "models": [{"builtin": "digits-cnn"}], "fidelity": {"models": {"nope": {}}}})


def test_openvino_returns_every_output_by_name(models: dict[str, Variant]) -> None:
    """A variant that runs on OpenVINO only is scored with it: every output, matched by name."""
    import dataclasses

    on_openvino = dataclasses.replace(models["noise"], runtimes=frozenset({"openvino"}))
    q = reference_quality(on_openvino, models["ref"])
    assert [o["name"] for o in q["fidelity"]["outputs"]] == ["logits", "heat"]
    assert output(q, "logits")["cosine"] > 0.99999 and output(q, "logits")["snr_db"] > 60
    assert abs(output(q, "heat")["cosine"]) < 0.5 and "heat" in (fidelity_problem(q, **DEFAULTS) or "")
