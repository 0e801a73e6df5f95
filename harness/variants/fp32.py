"""``fp32``: the model as exported, unchanged: the baseline every other variant is scored against."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.variants.base import Recipe

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel


class Fp32(Recipe):
    """Identity on the ONNX graph, so it also applies to ONNX-only models."""

    name = "fp32"
    stage = "onnx"
    precision = "fp32"
    runtimes = None

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        return inp
