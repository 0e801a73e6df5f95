"""torch module -> one self-contained ONNX file at a fixed opset.

The TorchScript exporter (``dynamo=False``) is used because it can still emit opset 17,
which boards with older runtimes (JetPack 5's ONNX Runtime / TensorRT) need; the dynamo
exporter cannot go below 18 and writes external data by default.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

OPSET = 17
EXPORTER = "torchscript"


def export_onnx(module: "nn.Module", input_shape: tuple[int, ...] | Mapping[str, tuple[int, ...]], path: Path,
                opset: int = OPSET) -> Path:
    """Export with static input shapes; names are ``input`` and ``output``, or, for a module
    taking several inputs (``input_shape`` a mapping ``{name: shape}``, in ``forward``'s
    argument order), the mapping's names."""
    import torch

    module = module.eval()
    shapes = dict(input_shape) if isinstance(input_shape, Mapping) else {"input": tuple(input_shape)}
    dummies = tuple(torch.zeros(tuple(s), dtype=torch.float32) for s in shapes.values())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, dummies, str(path), dynamo=False, opset_version=opset,
            input_names=list(shapes), output_names=["output"],
        )
    return path


def export_versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__, "exporter": EXPORTER, "opset": str(OPSET)}
