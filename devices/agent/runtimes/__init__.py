"""Registry of runtimes: one class per module, one table here.

The modules import their libraries only inside methods, so this import is cheap and works
on a board that has none of them.
"""

from __future__ import annotations

from typing import Dict, Type

from .base import Runtime
from .litert import LiteRtRuntime
from .onnxruntime import OnnxRuntime
from .openvino import OpenVinoRuntime
from .sleep import SleepRuntime
from .tensorrt import TensorRtRuntime

RUNTIMES: Dict[str, Type[Runtime]] = {
    "litert": LiteRtRuntime,
    "onnxruntime": OnnxRuntime,
    "openvino": OpenVinoRuntime,
    "sleep": SleepRuntime,
    "tensorrt": TensorRtRuntime,
}


def get_runtime(name: str) -> Type[Runtime]:
    """The runtime class registered under ``name``; KeyError lists the known ones."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise KeyError("unknown runtime %r (known: %s)" % (name, ", ".join(sorted(RUNTIMES)))) from None


__all__ = ["RUNTIMES", "Runtime", "get_runtime", "LiteRtRuntime", "OnnxRuntime", "OpenVinoRuntime", "SleepRuntime",
           "TensorRtRuntime"]
