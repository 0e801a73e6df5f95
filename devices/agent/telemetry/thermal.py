"""Generic thermal zones: ``/sys/class/thermal/thermal_zone*/{type,temp}`` in milli-degC.

Present on Jetson, Pi and most x86 boards; the hottest zone drives the cooldown and the
``temp_before_c``/``temp_after_c`` of a result. -256 C (Jetson) marks an offline sensor.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from .base import Source, sorted_glob, try_int, try_text

ZONES_GLOB = "/sys/class/thermal/thermal_zone*"
OFFLINE_C = -200.0


def read_zones(root_glob: str) -> Dict[str, Optional[float]]:
    """``{"<zone>:<type>": temp_c}``; None for unreadable or offline zones."""
    out: Dict[str, Optional[float]] = {}
    for zone in sorted_glob(root_glob):
        kind = try_text(os.path.join(zone, "type")) or "?"
        milli = try_int(os.path.join(zone, "temp"))
        temp = None if milli is None or milli / 1e3 <= OFFLINE_C else round(milli / 1e3, 2)
        out["%s:%s" % (os.path.basename(zone), kind)] = temp
    return out


def hottest(zones: Dict[str, Optional[float]]) -> Optional[float]:
    temps = [t for t in zones.values() if t is not None]
    return max(temps) if temps else None


class ThermalSource(Source):
    """Temperatures of every thermal zone."""

    name = "thermal"
    role = "state"

    def check(self) -> Optional[str]:
        if not sorted_glob(self.p(ZONES_GLOB)):
            return "no /sys/class/thermal/thermal_zone* on this machine"
        return None

    def snapshot(self) -> Dict[str, Any]:
        zones = read_zones(self.p(ZONES_GLOB))
        return {"zones_c": zones, "temp_c": hottest(zones)}

    def hottest_c(self) -> Optional[float]:
        return hottest(read_zones(self.p(ZONES_GLOB)))

    def changes(self, before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
        return []  # heat alone is no throttling; the clocks and counters say whether it bit
