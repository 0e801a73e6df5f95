"""torch module -> one self-contained ONNX file at a fixed opset.

The TorchScript exporter (``dynamo=False``) is used because it can still emit opset 17,
which boards with older runtimes (JetPack 5's ONNX Runtime / TensorRT) need; the dynamo
exporter cannot go below 18 and writes external data by default.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

OPSET = 17
EXPORTER = "torchscript"


def export_onnx(module: "nn.Module", input_shape: tuple[int, ...], path: Path, opset: int = OPSET) -> Path:
    """Export with a static input shape; names are ``input`` and ``output``."""
    import torch

    module = module.eval()
    dummy = torch.zeros(input_shape, dtype=torch.float32)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (dummy,), str(path), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["output"],
        )
    return path


def export_versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__, "exporter": EXPORTER, "opset": str(OPSET)}
