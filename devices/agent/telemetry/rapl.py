"""Intel (and recent AMD) RAPL energy counters from powercap: package and DRAM.

Counters, not samples: energy over the window is the counter delta, exact whatever the
sampling period. A counter wraps at ``max_energy_range_uj``: if e2 < e1 the delta is
e2 + max - e1 (the sampler reads often enough that at most one wrap lies between two
reads). ``core``/``uncore`` subzones are inside the package and ``psys`` covers the
whole platform, so only ``package-N`` and ``dram`` are summed. Since Linux 5.10
``energy_uj`` is readable by root only (PLATYPUS, CVE-2020-8694): then the source says so.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from .base import Source, describe, read_int, sorted_glob, try_int, try_text

ZONES_GLOB = "/sys/class/powercap/intel-rapl:*"


def counter_delta(e1: int, e2: int, max_range: Optional[int]) -> int:
    """e2 - e1 of a counter that wraps to 0 after ``max_range``."""
    if e2 >= e1:
        return e2 - e1
    if not max_range:
        raise ValueError("energy counter went backwards (%d -> %d) and max_energy_range_uj is unknown" % (e1, e2))
    return e2 + max_range - e1


class Domain:
    def __init__(self, zone: str, label: str):
        self.zone, self.label = zone, label
        self.energy = os.path.join(zone, "energy_uj")
        self.max_range = try_int(os.path.join(zone, "max_energy_range_uj"))


def find_domains(root_glob: str) -> List[Domain]:
    domains = []
    for zone in sorted_glob(root_glob):
        label = try_text(os.path.join(zone, "name")) or ""
        if (label.startswith("package") or label == "dram") and os.path.exists(os.path.join(zone, "energy_uj")):
            domains.append(Domain(zone, label))
    return domains


class RaplSource(Source):
    """Package + DRAM energy from the RAPL counters (kind "energy")."""

    name = "rapl"
    kind = "energy"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.domains: List[Domain] = []

    def check(self) -> Optional[str]:
        self.domains = find_domains(self.p(ZONES_GLOB))
        if not self.domains:
            return "no RAPL package/dram zones under /sys/class/powercap"
        try:
            self.read()
        except PermissionError as exc:
            return ("%s: energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694); run the agent as "
                    "root or make it readable (chmod a+r) to measure energy" % describe(exc))
        return None

    def read(self) -> Tuple[int, ...]:
        return tuple(read_int(d.energy) for d in self.domains)

    def delta(self, first: Tuple[int, ...], last: Tuple[int, ...]) -> float:
        return sum(counter_delta(a, b, d.max_range) for a, b, d in zip(first, last, self.domains)) / 1e6

    def details(self) -> Dict[str, Any]:
        return {"domains": ["%s(%s)" % (os.path.basename(d.zone), d.label) for d in self.domains]}
