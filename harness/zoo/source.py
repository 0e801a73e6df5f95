"""``SourceModel``: a resolved model, as paths and strings so it pickles across Ray workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class SourceModel:
    """What every variant of one model is built from.

    ``input_shape`` is the (first) input's shape, batch first; ``input_shapes`` names every
    input's when the suite did. ``content_hash`` identifies the weights: sha256 of the file for ONNX models, of the
    tensors for factory models, and the cache key of everything that determines them for
    built-ins. ``builder`` ("pkg.mod:func") rebuilds the architecture; with ``torch_state``
    it gives back the torch module. ONNX and .tflite models have neither.
    """

    name: str
    input_shape: tuple[int, ...]
    content_hash: str
    torch_state: Path | None = None
    onnx_path: Path | None = None
    tflite_path: Path | None = None
    eval_path: Path | None = None
    calib_path: Path | None = None
    train_path: Path | None = None
    num_classes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    builder: str | None = None
    kind: str = "builtin"  # "builtin" | "onnx" | "factory" | "tflite"
    # Every input's shape when the suite gives a mapping {input_name: shape} (a model with
    # several inputs, or named ones); ``input_shape`` is then the first entry's.
    input_shapes: dict[str, tuple[int, ...]] | None = field(default=None, hash=False)
    # Pruning and distillation may train on seeded synthetic inputs when there is no train data
    # (the suite's ``synthetic_data``; a random-weight built-in, which has no data at all).
    synthetic_data: bool = False
    # The content of the suite's ``calib:``/``train:`` data (it changes what a recipe builds).
    data_hash: str | None = None

    @property
    def has_torch(self) -> bool:
        return self.torch_state is not None and self.builder is not None

    def load_module(self) -> "nn.Module":
        """A fresh module in eval mode with the stored weights (imports torch)."""
        if not self.has_torch:
            raise TypeError(f"{self.name} is a {self.kind} model: there is no torch module")
        import torch

        from harness.zoo.registry import import_ref

        module = import_ref(self.builder)()  # type: ignore[arg-type]
        module.load_state_dict(torch.load(self.torch_state, map_location="cpu", weights_only=True))
        return module.eval()
