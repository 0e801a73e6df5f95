"""build_variant: export, content addressing, chain rules and error wrapping."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from harness.errors import ConfigError, VariantBuildError
from harness.variants import RECIPES, Preset, Recipe, Variant, build_variant
from harness.variants.build import split_chain


class _Boom(Recipe):
    name = "boom"
    stage = "onnx"

    def apply(self, inp, workdir, source):
        raise RuntimeError("tool crashed")


class _Refuse(Recipe):
    name = "refuse"
    stage = "onnx"

    def apply(self, inp, workdir, source):
        raise VariantBuildError("needs a calibration set")


class _TorchNoop(Recipe):
    name = "torch-noop"
    stage = "torch"

    def apply(self, inp, workdir, source):
        return inp


@pytest.fixture
def extra_recipes(monkeypatch):
    for cls in (_Boom, _Refuse, _TorchNoop):
        monkeypatch.setitem(RECIPES, cls.name, Preset(cls))


def test_fp32_export_matches_torch(digits_source, artifact_cache):
    v = build_variant(digits_source, "fp32", artifact_cache)
    assert isinstance(v, Variant) and v.path.name == "model.onnx" and v.chain == "fp32"
    assert v.opset == 17 and v.precision == "fp32" and v.runtimes is None
    assert v.sha256 == hashlib.sha256(v.path.read_bytes()).hexdigest() and v.size_bytes == v.path.stat().st_size
    assert not list(v.path.parent.glob("*.data")) and not (v.path.parent / "work").exists()
    assert v.macs == 163_968  # hand count of DigitsCNN's convs and linear layer
    assert v.params == sum(int(np.prod(t.dims)) for t in onnx.load(str(v.path)).graph.initializer)
    assert v.input_shape == (1, 1, 8, 8) and v.eval_path == digits_source.eval_path
    assert v.tool_versions["torch"] == torch.__version__ and v.tool_versions["opset"] == "17"
    module = digits_source.load_module()
    sess = ort.InferenceSession(str(v.path), providers=["CPUExecutionProvider"])
    with np.load(v.eval_path) as f:
        xs = f["x"][:32]
    for x in xs:
        got = sess.run(None, {"input": x[None]})[0]
        with torch.no_grad():
            want = module(torch.from_numpy(x[None])).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_content_addressing(digits_source, artifact_cache):
    first = build_variant(digits_source, "fp32", artifact_cache)
    mtime = first.path.stat().st_mtime_ns
    again = build_variant(digits_source, ("fp32",), artifact_cache)
    assert again.cached and again.variant_id == first.variant_id and again.build_s == first.build_s
    assert again.path.stat().st_mtime_ns == mtime  # not rebuilt
    other = build_variant(digits_source, "int8-dynamic", artifact_cache)
    chained = build_variant(digits_source, "fp32>int8-dynamic", artifact_cache)
    assert len({first.variant_id, other.variant_id, chained.variant_id}) == 3
    assert chained.chain == "fp32 > int8-dynamic" and chained.precision == "int8"
    assert pickle.loads(pickle.dumps(again)) == again


def test_failing_recipe_is_a_variant_build_error(digits_source, artifact_cache, extra_recipes):
    with pytest.raises(VariantBuildError, match=r"^boom: RuntimeError: tool crashed$"):
        build_variant(digits_source, "fp32 > boom", artifact_cache)
    with pytest.raises(VariantBuildError, match=r"^refuse: needs a calibration set$"):
        build_variant(digits_source, "refuse", artifact_cache)
    assert not any(p.name.startswith(".") for p in (artifact_cache.root / "variant").iterdir())


def test_chain_rules(digits_source, artifact_cache, extra_recipes, tmp_path):
    with pytest.raises(VariantBuildError, match="cannot follow the onnx-stage recipe 'int8-dynamic'"):
        build_variant(digits_source, "int8-dynamic > torch-noop", artifact_cache)
    v = build_variant(digits_source, "torch-noop > int8-dynamic", artifact_cache)
    assert v.precision == "int8"
    from harness.zoo.source import SourceModel

    onnx_only = SourceModel(name="u", input_shape=(1, 1, 8, 8), content_hash="0" * 64, onnx_path=v.path, kind="onnx")
    with pytest.raises(VariantBuildError, match="torch-noop: needs a torch model, but u is ONNX-only"):
        build_variant(onnx_only, "torch-noop", artifact_cache)
    with pytest.raises(ConfigError, match="unknown recipe 'nope'"):
        build_variant(digits_source, "fp32 > nope", artifact_cache)
    with pytest.raises(ConfigError):
        split_chain("  ")


def test_export_failure_is_wrapped(artifact_cache, tmp_path, monkeypatch):
    from harness.zoo.source import SourceModel

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    state = tmp_path / "state.pt"
    torch.save({}, state)
    # a module whose forward cannot run at this input shape
    src = SourceModel(name="wrong-shape", input_shape=(1, 3, 8, 8), content_hash="1" * 64,
                      torch_state=state, builder="tests_variants_helpers:mismatch", kind="factory")
    with pytest.raises(VariantBuildError, match="^export: torch.onnx.export failed for wrong-shape"):
        build_variant(src, "fp32", artifact_cache)
