"""ONNX and factory model references, and pickling of SourceModel."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch

from harness.config.suite import FactoryModel, OnnxModel
from harness.errors import ConfigError
from harness.variants import build_variant
from harness.variants.export import export_onnx
from harness.zoo import SourceModel, resolve_model

HERE = Path(__file__).parent


def test_onnx_model_resolves_to_its_bytes(digits_source, artifact_cache, tmp_path):
    path = export_onnx(digits_source.load_module(), (1, 1, 8, 8), tmp_path / "user.onnx")
    ref = OnnxModel(name="user-digits", onnx=path, input_shape=(1, 1, 8, 8), eval=digits_source.eval_path)
    src = resolve_model(ref, artifact_cache)
    assert src.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert src.torch_state is None and src.onnx_path == path and src.eval_path == digits_source.eval_path
    assert src.kind == "onnx" and not src.has_torch
    with pytest.raises(TypeError):
        src.load_module()
    variant = build_variant(src, "fp32", artifact_cache)
    assert variant.sha256 == src.content_hash  # fp32 of an ONNX model is the file, byte for byte
    assert build_variant(src, "int8-dynamic", artifact_cache).size_bytes < variant.size_bytes


def test_factory_model_resolves(artifact_cache, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    ref = FactoryModel(name="fact", factory="zoo_fixture_factory:build", input_shape=(1, 1, 8, 8))
    src = resolve_model(ref, artifact_cache)
    assert src.kind == "factory" and src.torch_state.is_file() and src.builder == "zoo_fixture_factory:build"
    import zoo_fixture_factory

    x = torch.randn(1, 1, 8, 8)
    torch.testing.assert_close(src.load_module()(x), zoo_fixture_factory.build().eval()(x))
    assert resolve_model(ref, artifact_cache).content_hash == src.content_hash
    assert build_variant(src, "fp32", artifact_cache).input_shape == (1, 1, 8, 8)


@pytest.mark.parametrize(
    ("factory", "reason"),
    [
        ("no_such_module_xyz:build", "cannot import"),
        ("zoo_fixture_factory:missing", "cannot import"),
        ("zoo_fixture_factory:broken", "weights file missing"),
        ("zoo_fixture_factory:not_a_module", "not a torch.nn.Module"),
    ],
)
def test_bad_factory_is_a_config_error(factory, reason, artifact_cache, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    ref = FactoryModel(name="bad", factory=factory, input_shape=(1, 1, 8, 8))
    with pytest.raises(ConfigError, match=reason):
        resolve_model(ref, artifact_cache)


def test_source_model_pickles(digits_source):
    again = pickle.loads(pickle.dumps(digits_source))
    assert again == digits_source and again.meta == digits_source.meta
    assert isinstance(again, SourceModel) and hash(again) == hash(digits_source)


def test_factory_dataset_feeds_fine_tuning_and_accuracy(artifact_cache, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import numpy as np

    from harness.variants import build_variant
    from harness.variants.quality import reference_quality

    plain = resolve_model(FactoryModel(name="f", factory="zoo_fixture_factory:build", input_shape=(1, 1, 8, 8)),
                          artifact_cache)
    ref = FactoryModel(name="f", factory="zoo_fixture_factory:build", input_shape=(1, 1, 8, 8),
                       dataset="zoo_fixture_factory:digits_splits")
    src = resolve_model(ref, artifact_cache)
    assert src.content_hash != plain.content_hash  # the data is part of what the model is
    assert {p.name for p in (src.train_path, src.calib_path, src.eval_path)} == {"train.npz", "calib.npz", "test.npz"}
    with np.load(src.train_path) as d:
        assert d["x"].shape[1:] == (1, 8, 8) and len(d["x"]) == len(d["y"]) > 1000
    # The untrained factory net learns from the train split during prune-l1's fine-tune.
    fp32 = build_variant(src, "fp32", artifact_cache)
    tuned = build_variant(src, "prune-l1-30", artifact_cache)
    assert reference_quality(tuned, fp32)["host_accuracy"] > reference_quality(fp32, fp32)["host_accuracy"] + 0.3


def test_bad_dataset_factory(artifact_cache, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    ref = FactoryModel(name="f", factory="zoo_fixture_factory:build", input_shape=(1, 1, 8, 8),
                       dataset="zoo_fixture_factory:bad_splits")
    with pytest.raises(ConfigError, match="3 inputs but 2 labels"):
        resolve_model(ref, artifact_cache)
