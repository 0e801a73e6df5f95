"""CPU clocks, governors and (x86) thermal throttle counters.

``scaling_cur_freq`` (kHz) per CPU and the governors in use are recorded before and
after the window. The x86 ``thermal_throttle/{core,package}_throttle_count`` counters are
cumulative: any increase during the window marks it throttled. A clock drop counts only
when the clocks are pinned (governor ``performance``/``userspace`` or min == max); under a
dynamic governor a lower clock after the window is the governor idling, not throttling.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional

from .base import Source, counter_deltas, dropped, sorted_glob, try_int, try_text

CPUS_GLOB = "/sys/devices/system/cpu/cpu[0-9]*"
PINNED = ("performance", "userspace")
_CPU = re.compile(r"cpu(\d+)$")


class CpufreqSource(Source):
    """Per-CPU frequency and governor; x86 thermal throttle counts."""

    name = "cpufreq"
    role = "state"

    def _cpus(self) -> List[str]:
        return [c for c in sorted_glob(self.p(CPUS_GLOB)) if _CPU.search(c)]

    def check(self) -> Optional[str]:
        cpus = self._cpus()
        if not any(os.path.isdir(os.path.join(c, d)) for c in cpus for d in ("cpufreq", "thermal_throttle")):
            return "no cpufreq or thermal_throttle under /sys/devices/system/cpu (VM or container?)"
        return None

    def snapshot(self) -> Dict[str, Any]:
        freqs: Dict[str, Optional[float]] = {}
        governors = set()
        pinned = []
        throttle: Dict[str, int] = {}
        for cpu in self._cpus():
            name = os.path.basename(cpu)
            khz = try_int(os.path.join(cpu, "cpufreq", "scaling_cur_freq"))
            if khz is not None:
                freqs[name] = round(khz / 1e3, 1)
            gov = try_text(os.path.join(cpu, "cpufreq", "scaling_governor"))
            if gov:
                governors.add(gov)
            lo, hi = (try_int(os.path.join(cpu, "cpufreq", f)) for f in ("scaling_min_freq", "scaling_max_freq"))
            pinned.append(gov in PINNED or (lo is not None and lo == hi))
            for kind in ("core", "package"):
                count = try_int(os.path.join(cpu, "thermal_throttle", "%s_throttle_count" % kind))
                if count is not None:
                    throttle["%s_%s" % (name, kind)] = count
        return {
            "freq_mhz": freqs,
            "max_freq_mhz": max(freqs.values()) if freqs else None,
            "governors": sorted(governors),
            "clocks_pinned": bool(pinned) and all(pinned),
            "throttle_counts": throttle,
        }

    def changes(self, before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
        out = counter_deltas(before.get("throttle_counts") or {}, after.get("throttle_counts") or {},
                             "thermal throttle count")
        if len(out) > 4:
            out = out[:4] + ["(%d more counters)" % (len(out) - 4)]
        if before.get("clocks_pinned"):
            out += dropped(before.get("max_freq_mhz"), after.get("max_freq_mhz"), "pinned CPU clock")
        return out
