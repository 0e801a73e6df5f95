"""Telemetry sources: one class per module, one table here.

``SOURCES`` lists power sources first, in the order ``"auto"`` tries them (a board's own
rail monitors before a fallback process, a whole-board reading before a CPU- or GPU-only
counter, an external meter only when configured), then the state sources snapshotted
around each timed window. Which ones this board has is discovered at run time by each
source's ``probe``; modules import nothing optional at import time.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Type

from .base import Runner, Source
from .command import CommandSource
from .cpufreq import CpufreqSource
from .ina2xx import Ina2xxSource
from .ina3221 import Ina3221Source
from .jetson import JetsonSource
from .meminfo import MemorySource
from .nvml import NvmlSource
from .pi import PiSource
from .pi5_pmic import Pi5PmicSource
from .rapl import RaplSource
from .tegrastats import TegrastatsSource
from .thermal import ThermalSource

SOURCES: Dict[str, Type[Source]] = {
    "ina3221": Ina3221Source,
    "tegrastats": TegrastatsSource,
    "pi5-pmic": Pi5PmicSource,
    "ina2xx": Ina2xxSource,
    "rapl": RaplSource,
    "nvml": NvmlSource,
    "command": CommandSource,
    "thermal": ThermalSource,
    "cpufreq": CpufreqSource,
    "memory": MemorySource,
    "jetson": JetsonSource,
    "pi": PiSource,
}
POWER_SOURCES = tuple(name for name, cls in SOURCES.items() if cls.role == "power")
STATE_SOURCES = tuple(name for name, cls in SOURCES.items() if cls.role == "state")
POWER_CHOICES = ("auto", "none") + POWER_SOURCES


def make(name: str, root: str = "/", runner: Optional[Runner] = None,
         config: Optional[Dict[str, Any]] = None, path: Optional[str] = None) -> Source:
    return SOURCES[name](root=root, runner=runner, config=config, path=path)


def pick_power(choice: str, root: str = "/", runner: Optional[Runner] = None,
               config: Optional[Dict[str, Any]] = None,
               path: Optional[str] = None) -> Tuple[Optional[Source], Optional[str], List[Dict[str, Any]]]:
    """(source, None, probes) for the chosen or first available power source, else
    (None, reason, probes). Never raises."""
    if choice == "none":
        return None, "power measurement disabled (telemetry.power.source: none)", []
    names = POWER_SOURCES if choice == "auto" else (choice,)
    probes = []
    for name in names:
        if name not in SOURCES:
            return None, "unknown power source %r" % name, probes
        source = make(name, root, runner, config, path)
        info = source.probe()
        probes.append(info)
        if info["available"]:
            return source, None, probes
        source.close()
    why = "; ".join("%s: %s" % (p["name"], p["reason"]) for p in probes)
    return None, ("no power source available (%s)" % why if choice == "auto" else why), probes


def state_sources(root: str = "/", runner: Optional[Runner] = None, path: Optional[str] = None) -> List[Source]:
    """The state sources this machine has."""
    found = []
    for name in STATE_SOURCES:
        source = make(name, root, runner, None, path)
        if source.probe()["available"]:
            found.append(source)
    return found


def probe_power(root: str = "/", runner: Optional[Runner] = None, path: Optional[str] = None) -> List[Dict[str, Any]]:
    """``[{name, kind, available, reason}]`` for every power source but ``command``
    (which needs a configured command): what ``probe`` and ``inventory check`` show."""
    out = []
    for name in POWER_SOURCES:
        if name == "command":
            continue
        source = make(name, root, runner, None, path)
        info = source.probe()
        source.close()
        out.append({k: info[k] for k in ("name", "kind", "available", "reason")})
    return out


__all__ = ["SOURCES", "POWER_SOURCES", "STATE_SOURCES", "POWER_CHOICES", "Source", "make", "pick_power",
           "state_sources", "probe_power"]
