"""The table of built-in models. Stdlib only: config validation imports it to check names."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


def import_ref(ref: str) -> Callable[..., Any]:
    """``"pkg.mod:func"`` -> the function (imported on call, so tables stay cheap)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ZooEntry:
    """A model that needs no download: how to build it and whether it is trained here.

    ``version`` goes into every cache key built from this entry: bump it when the
    architecture or the training recipe changes, so stale weights are never reused.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    trained: bool
    builder: str  # "pkg.mod:func" returning an untrained nn.Module
    version: str = "1"
    seed: int = 0
    dataset: str | None = None  # "digits": data comes from harness.zoo.digits

    def build(self) -> Any:
        """A fresh, untrained ``torch.nn.Module`` (imports torch)."""
        return import_ref(self.builder)()


MODELS: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            name="digits-cnn",
            input_shape=(1, 1, 8, 8),
            num_classes=10,
            description="Depthwise-separable CNN on scikit-learn's 8x8 digits, trained here on first use.",
            trained=True,
            builder="harness.zoo.nets:digits_cnn",
            dataset="digits",
        ),
        ZooEntry(
            name="mobilenetv2-224",
            input_shape=(1, 3, 224, 224),
            num_classes=1000,
            description="MobileNetV2 (width 1.0), seeded random weights: for latency, accuracy unknown.",
            trained=False,
            builder="harness.zoo.nets:mobilenet_v2",
        ),
        ZooEntry(
            name="resnet18-224",
            input_shape=(1, 3, 224, 224),
            num_classes=1000,
            description="ResNet-18, seeded random weights: for latency, accuracy unknown.",
            trained=False,
            builder="harness.zoo.nets:resnet18",
        ),
    )
}
