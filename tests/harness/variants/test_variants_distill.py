"""distill: a half-width student at under half the MACs, nearly as accurate; chains; refusals."""

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
from harness.zoo import nets
from quant_helpers import ort_accuracy


def test_distill_student_small_and_accurate(digits_source, artifact_cache):
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    student = build_variant(digits_source, "distill", artifact_cache)
    assert student.macs < 0.5 * fp32.macs and student.params < fp32.params
    assert student.precision == "fp32" and student.runtimes is None
    assert ort_accuracy(student.path, student.eval_path) >= ort_accuracy(fp32.path, fp32.eval_path) - 0.02


def test_distill_then_prune_then_quantize(digits_source, artifact_cache):
    student = build_variant(digits_source, "distill", artifact_cache)
    pruned = build_variant(digits_source, "distill > prune-channels-25", artifact_cache)
    assert pruned.chain == "distill > prune-channels-25"
    assert pruned.macs < student.macs and pruned.params < student.params
    assert ort_accuracy(pruned.path, pruned.eval_path) >= 0.85
    quant = build_variant(digits_source, "distill > int8-dynamic", artifact_cache)
    assert quant.precision == "int8" and quant.macs == student.macs


def test_default_students_match_their_teachers():
    for teacher, student, shape in [
        (nets.digits_cnn(), nets.digits_cnn_student(), (1, 1, 8, 8)),
        (nets.mobilenet_v2(), nets.mobilenet_v2_student(), (1, 3, 64, 64)),
        (nets.resnet18(), nets.resnet18_student(), (1, 3, 64, 64)),
    ]:
        assert type(student) is type(teacher)
        size = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert size(student) < 0.6 * size(teacher)
        with torch.no_grad():
            assert student.eval()(torch.zeros(shape)).shape == teacher.eval()(torch.zeros(shape)).shape


@pytest.mark.parametrize(
    ("options", "match"),
    [({"alpha": 1.5}, "alpha"), ({"temperature": 0}, "temperature"), ({"epochs": 0}, "epochs"),
     ({"student": "not a reference"}, "student"), ({"students": "auto"}, "students")],
)
def test_distill_options_rejected(options, match):
    with pytest.raises(ConfigError, match=match):
        make_recipe("d", {"kind": "distill", **options})


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return Tiny()


def seven_classes() -> nn.Module:
    return nets.DigitsCNN(7, width=0.5)


@pytest.fixture
def tiny_source(tmp_path, monkeypatch):
    """A user model without data (the suite allows synthetic inputs), importable as '<this module>:tiny'."""
    from harness.zoo.source import SourceModel

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    state = tmp_path / "state.pt"
    torch.save(tiny().state_dict(), state)
    return SourceModel(name="user-net", input_shape=(1, 1, 8, 8), content_hash="3" * 64, torch_state=state,
                       builder=f"{Path(__file__).stem}:tiny", kind="factory", synthetic_data=True)


def test_distill_needs_a_student_for_unknown_teachers(tiny_source, digits_source, artifact_cache):
    with pytest.raises(VariantBuildError, match="^distill: no default student for a Tiny teacher"):
        build_variant(tiny_source, "distill", artifact_cache)
    custom = {"d": {"kind": "distill", "student": f"{Path(__file__).stem}:seven_classes"}}
    with pytest.raises(VariantBuildError, match=r"^d: student .* outputs \(1, 7\), the teacher \(1, 10\)"):
        build_variant(digits_source, "d", artifact_cache, custom=custom)


def test_distill_factory_student_without_data(tiny_source, artifact_cache):
    """No labelled data: the student learns the teacher's soft outputs on synthetic inputs."""
    custom = {"d": {"kind": "distill", "student": f"{Path(__file__).stem}:tiny", "epochs": 2}}
    v = build_variant(tiny_source, "d", artifact_cache, custom=custom)
    x = np.random.default_rng(0).standard_normal(v.input_shape).astype(np.float32)
    out = ort.InferenceSession(str(v.path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert out.shape == (1, 10) and np.isfinite(out).all()
