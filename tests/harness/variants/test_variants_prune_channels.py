"""prune-channels: channels really removed (params and MACs drop), accuracy kept, residual
structure respected, and models it does not know refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from harness.errors import ConfigError, VariantBuildError
from harness.variants import build_variant
from harness.variants.build import make_recipe
from harness.variants.prune_channels import channel_groups, keep_indices, prune_group
from harness.zoo import nets
from quant_helpers import ort_accuracy


def test_prune_channels_50_smaller_and_accurate(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    pruned = build_variant(digits_source, "prune-channels-50", artifact_cache)
    assert pruned.params < 0.7 * fp32.params and pruned.macs < 0.7 * fp32.macs
    assert pruned.precision == "fp32" and pruned.sparsity < 0.01
    acc32 = ort_accuracy(fp32.path, fp32.eval_path)
    assert ort_accuracy(pruned.path, pruned.eval_path) >= acc32 - 0.05

    # iterative: same final widths, its own variant id
    custom = {"iter-50": {"kind": "prune-channels", "amount": 0.5, "schedule": [0.25, 0.5]}}
    iterative = build_variant(digits_source, "iter-50", artifact_cache, custom=custom)
    assert iterative.variant_id != pruned.variant_id
    assert iterative.macs == pruned.macs and iterative.params == pruned.params
    assert ort_accuracy(iterative.path, iterative.eval_path) >= acc32 - 0.05


def test_prune_channels_then_int8(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    v = build_variant(digits_source, "prune-channels-25 > int8-dynamic", artifact_cache)
    assert v.precision == "int8" and v.macs < fp32.macs and v.size_bytes < fp32.size_bytes
    assert ort_accuracy(v.path, v.eval_path) >= ort_accuracy(fp32.path, fp32.eval_path) - 0.05


def test_prune_channels_mobilenet_without_data(mobilenet_source, artifact_cache):
    """No labelled data: fine-tuned to match the unpruned model on synthetic inputs."""
    assert mobilenet_source.train_path is None
    fp32 = build_variant(mobilenet_source, "fp32", artifact_cache)
    custom = {"p": {"kind": "prune-channels", "amount": 0.25, "finetune_epochs": 1}}
    v = build_variant(mobilenet_source, "p", artifact_cache, custom=custom)
    assert v.macs < 0.8 * fp32.macs and v.params < fp32.params
    x = np.random.default_rng(0).standard_normal(v.input_shape).astype(np.float32)
    out = ort.InferenceSession(str(v.path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert out.shape == (1, 1000) and np.isfinite(out).all()


@pytest.mark.parametrize(
    ("build", "shape", "n_groups"),
    [(nets.digits_cnn, (2, 1, 8, 8), 4), (nets.mobilenet_v2, (2, 3, 64, 64), 20), (nets.resnet18, (2, 3, 64, 64), 8)],
    ids=["digits", "mobilenetv2", "resnet18"],
)
def test_surgery_removes_only_what_it_says(build, shape, n_groups):
    """Index bookkeeping: once a group's dropped channels no longer reach the consumer,
    removing them leaves the output unchanged (BatchNorm, depthwise convs and the next
    layer all sliced alike); skip paths and block outputs keep their width."""
    torch.manual_seed(0)
    model = build().eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    skip_fed = {}  # convs whose outputs meet a skip connection
    for name, m in model.named_modules():
        if isinstance(m, nets.InvertedResidual) and m.use_res:
            skip_fed[f"{name}.conv.2.0"] = m.conv[2][0].out_channels
        elif isinstance(m, nets.BasicBlock):
            skip_fed[f"{name}.body.1.0"] = m.body[1][0].out_channels
            if m.down is not None:
                skip_fed[f"{name}.down.0"] = m.down[0].out_channels
    assert bool(skip_fed) == (build is not nets.digits_cnn)
    x = torch.randn(shape)
    groups = channel_groups(model)
    assert len(groups) == n_groups
    for g in groups:
        producer = model.get_submodule(g.producer)
        keep_n = producer.out_channels // 2
        dropped = torch.ones(producer.out_channels, dtype=torch.bool)
        dropped[keep_indices(producer, keep_n)] = False
        with torch.no_grad():
            model.get_submodule(g.consumer.conv).weight[:, dropped] = 0
            want = model(x)
        prune_group(model, g, keep_n)
        assert model.get_submodule(g.producer).out_channels == keep_n
        for f in g.followers:
            conv = model.get_submodule(f.conv)
            assert conv.groups == conv.in_channels == conv.out_channels == keep_n
        with torch.no_grad():
            torch.testing.assert_close(model(x), want, atol=1e-4, rtol=1e-4)
    for name, width in skip_fed.items():
        assert model.get_submodule(name).out_channels == width, name


def test_prune_channels_options_rejected():
    with pytest.raises(ConfigError, match="amount"):
        make_recipe("p", {"kind": "prune-channels", "amount": 1.5})
    with pytest.raises(ConfigError, match="schedule must end at amount"):
        make_recipe("p", {"kind": "prune-channels", "amount": 0.5, "schedule": [0.1, 0.3]})
    with pytest.raises(ConfigError, match="increase"):
        make_recipe("p", {"kind": "prune-channels", "amount": 0.5, "schedule": [0.3, 0.2, 0.5]})
    ok = make_recipe("p", {"kind": "prune-channels-50", "schedule": [0.25, 0.5]})
    assert ok.params()["schedule"] == [0.25, 0.5] and ok.params()["amount"] == 0.5


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))


def plain() -> nn.Module:
    torch.manual_seed(0)
    return Plain()


def test_prune_channels_refuses_unknown_structure(artifact_cache, tmp_path, monkeypatch):
    from harness.zoo.source import SourceModel

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    state = tmp_path / "state.pt"
    torch.save(plain().state_dict(), state)
    src = SourceModel(name="user-net", input_shape=(1, 1, 8, 8), content_hash="2" * 64, torch_state=state,
                      builder=f"{Path(__file__).stem}:plain", kind="factory", synthetic_data=True)
    with pytest.raises(VariantBuildError, match="^prune-channels-25: structured pruning supports the zoo archit"):
        build_variant(src, "prune-channels-25", artifact_cache)
