"""NVIDIA GPUs through NVML (``pynvml``, optional: absent means unavailable, with the reason).

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta and newer) is a
counter, preferred: the window's energy is its delta. Older GPUs only give
``nvmlDeviceGetPowerUsage`` (mW, averaged over up to 1 s on Ampere+), integrated as
samples. Every GPU of the machine is summed; the details name them.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Tuple

from .base import Source, describe


class NvmlSource(Source):
    """GPU energy (counter) or power (samples) summed over all NVML devices."""

    name = "nvml"
    kind = "energy"

    def __init__(self, *args: Any, nvml: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._nvml = nvml  # injectable module, for tests
        self._handles: List[Any] = []
        self._names: List[str] = []
        self._started = False

    def check(self) -> Optional[str]:
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")  # optional: not every board has it
            except Exception as exc:
                return "pynvml is not importable (%s); pip install nvidia-ml-py" % describe(exc)
        nv = self._nvml
        try:
            nv.nvmlInit()
            self._started = True
            self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(nv.nvmlDeviceGetCount())]
        except Exception as exc:
            return "NVML did not start: %s" % describe(exc)
        if not self._handles:
            return "NVML sees no GPU"
        self._names = [_text(nv.nvmlDeviceGetName(h)) for h in self._handles]
        try:
            self.kind = "energy"
            self.read()
        except Exception:
            self.kind = "power"  # pre-Volta: no energy counter
            self.read()
        return None

    def read(self) -> Any:
        nv = self._nvml
        if self.kind == "energy":
            return tuple(int(nv.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles)
        return sum(nv.nvmlDeviceGetPowerUsage(h) for h in self._handles) / 1e3  # mW -> W

    def delta(self, first: Tuple[int, ...], last: Tuple[int, ...]) -> float:
        return sum(b - a for a, b in zip(first, last)) / 1e3  # mJ -> J

    def details(self) -> Dict[str, Any]:
        return {"gpus": list(self._names), "method": "total energy counter" if self.kind == "energy" else "power usage"}

    def close(self) -> None:
        if self._started:
            self._started = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
