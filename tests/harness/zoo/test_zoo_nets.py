"""The built-in architectures: shapes, parameter and MAC counts close to the published ones."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from harness.config.suite import BuiltinModel
from harness.variants import build_variant
from harness.zoo import MODELS, ZooEntry, resolve_model


def test_registry_entries():
    assert set(MODELS) == {"digits-cnn", "mobilenetv2-224", "resnet18-224"}
    assert all(isinstance(e, ZooEntry) for e in MODELS.values())
    assert MODELS["digits-cnn"].trained and not MODELS["resnet18-224"].trained
    assert MODELS["mobilenetv2-224"].input_shape == (1, 3, 224, 224)


def test_registries_import_without_heavy_libraries():
    code = (
        "import sys, harness.zoo, harness.variants, harness.config.suite as s;"
        "s.parse_chain('fp32 > int8-dynamic');"
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'sklearn') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[3]))


@pytest.mark.parametrize(
    ("name", "params", "macs"),
    [("mobilenetv2-224", 3.50e6, 300.8e6), ("resnet18-224", 11.69e6, 1.814e9)],
)
def test_imagenet_nets(name, params, macs, artifact_cache):
    entry = MODELS[name]
    module = entry.build().eval()
    n = sum(p.numel() for p in module.parameters())
    assert abs(n - params) / params < 0.10
    src = resolve_model(BuiltinModel(builtin=name), artifact_cache)
    assert src.eval_path is None and src.meta["fp32_accuracy"] is None and src.num_classes == 1000
    with torch.no_grad():
        out = src.load_module()(torch.randn(entry.input_shape))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
    assert 1e-3 < out.std().item() < 1e3  # BN statistics calibrated: no vanishing activations
    variant = build_variant(src, "fp32", artifact_cache)
    assert abs(variant.params - params) / params < 0.10
    assert abs(variant.macs - macs) / macs < 0.10
    # resolving again loads the stored weights: same content hash
    assert resolve_model(BuiltinModel(builtin=name), artifact_cache).content_hash == src.content_hash
