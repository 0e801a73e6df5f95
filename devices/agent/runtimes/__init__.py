"""Registry of runtimes: one class per module, one table here.

The modules import their libraries only inside methods, so this import is cheap and works
on a board that has none of them.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

from ..errors import ProtocolError
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


def open_runtime(name: str, options: Dict[str, Any], threads: Optional[int], canary: bool = False) -> Runtime:
    """The runtime a spec names, constructed (options checked) but not loaded; an unknown name
    or option is the spec's fault (ProtocolError). The ``canary``'s runtime gets what it keeps
    of the job's options (``Runtime.canary_options``), and its faults say "canary"."""
    if name not in RUNTIMES:
        raise ProtocolError("unknown %sruntime %r (known: %s)"
                            % ("canary " if canary else "", name, ", ".join(sorted(RUNTIMES))))
    cls = RUNTIMES[name]
    try:
        return cls(cls.canary_options(options) if canary else options, threads)
    except ValueError as exc:
        raise ProtocolError("canary: %s" % exc if canary else str(exc)) from None


__all__ = ["RUNTIMES", "Runtime", "get_runtime", "open_runtime", "LiteRtRuntime", "OnnxRuntime", "OpenVinoRuntime", "SleepRuntime",
           "TensorRtRuntime"]
