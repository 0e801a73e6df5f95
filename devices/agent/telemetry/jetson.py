"""Jetson state: GPU load and clock (devfreq), nvpmodel mode, locked clocks, Orin
over-current throttle counters.

- GPU: the devfreq device whose of_node name is gv11b/gp10b/ga10b/gb10b; ``device/load``
  is per-mille (jetson_stats reads the same files).
- Clocks locked (``jetson_clocks``): every CPU's scaling min == max, GPU devfreq min ==
  max, and EMC at its max rate when the bpmp debugfs is readable (root only).
- ``soctherm_oc`` hwmon ``oc{1,2,3}_event_cnt`` are cumulative: a delta during the
  window means the board throttled for over-current.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from .base import Source, counter_deltas, describe, dropped, sorted_glob, try_int, try_text

GPU_NODES = ("gv11b", "gp10b", "ga10b", "gb10b")
_OC = re.compile(r"(oc\d+)_event_cnt$")


def find_gpu_devfreq(root_glob: str) -> Tuple[Optional[str], Optional[str]]:
    """(devfreq dir, of_node name) of the integrated GPU, or (None, None)."""
    for dev in sorted_glob(root_glob):
        node = try_text(os.path.join(dev, "device", "of_node", "name"))
        if node in GPU_NODES:
            return dev, node
        base = os.path.basename(dev)
        for name in GPU_NODES:
            if base.endswith("." + name) or base == name:
                return dev, name
    return None, None


def _mhz(hz: Optional[int]) -> Optional[float]:
    return None if hz is None else round(hz / 1e6, 1)


def gpu_state(dev: str) -> Dict[str, Any]:
    load = try_int(os.path.join(dev, "device", "load"))
    return {
        "load_pct": None if load is None else load / 10.0,  # per-mille
        "freq_mhz": _mhz(try_int(os.path.join(dev, "cur_freq"))),
        "min_mhz": _mhz(try_int(os.path.join(dev, "min_freq"))),
        "max_mhz": _mhz(try_int(os.path.join(dev, "max_freq"))),
    }


def parse_nvpmodel(text: str) -> Dict[str, Any]:
    """``nvpmodel -q``: ``NV Power Mode: MAXN`` then the mode id; warnings tolerated."""
    mode: Optional[str] = None
    mode_id: Optional[int] = None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("NV Power Mode"):
            mode = line.split(":", 1)[1].strip() if ":" in line else None
            if i + 1 < len(lines) and lines[i + 1].isdigit():
                mode_id = int(lines[i + 1])
    return {"mode": mode, "id": mode_id}


def oc_counters(root_glob: str) -> Optional[Dict[str, int]]:
    for hw in sorted_glob(root_glob):
        if try_text(os.path.join(hw, "name")) != "soctherm_oc":
            continue
        counts = {}
        for path in sorted_glob(os.path.join(hw, "oc*_event_cnt")):
            m, value = _OC.search(path), try_int(path)
            if m and value is not None:
                counts[m.group(1)] = value
        return counts
    return None


def cpu_locked(root: str) -> Optional[bool]:
    cpus = sorted_glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq"))
    pairs = [(try_int(os.path.join(c, "scaling_min_freq")), try_int(os.path.join(c, "scaling_max_freq"))) for c in cpus]
    pairs = [(lo, hi) for lo, hi in pairs if lo is not None and hi is not None]
    return all(lo == hi for lo, hi in pairs) if pairs else None


def emc_locked(root: str) -> Optional[bool]:
    base = os.path.join(root, "sys/kernel/debug/bpmp/debug/clk/emc")
    rate, top = try_int(os.path.join(base, "rate")), try_int(os.path.join(base, "max_rate"))
    return None if rate is None or top is None else rate >= top


class JetsonSource(Source):
    """GPU, nvpmodel, locked clocks and over-current counters of a Jetson."""

    name = "jetson"
    role = "state"

    def check(self) -> Optional[str]:
        dev, _ = find_gpu_devfreq(self.p("/sys/class/devfreq/*"))
        if dev is None and not os.path.exists(self.p("/etc/nv_tegra_release")):
            return "not a Jetson (no Tegra GPU devfreq, no /etc/nv_tegra_release)"
        return None

    def nvpmodel(self) -> Dict[str, Any]:
        if not self.has_command("nvpmodel"):
            return {"mode": None, "id": None, "reason": "nvpmodel not found on PATH"}
        try:
            return parse_nvpmodel(self.run(["nvpmodel", "-q"]))
        except Exception as exc:
            return {"mode": None, "id": None, "reason": describe(exc)}

    def snapshot(self) -> Dict[str, Any]:
        dev, node = find_gpu_devfreq(self.p("/sys/class/devfreq/*"))
        gpu = dict(gpu_state(dev), node=node) if dev else None
        cpu, emc = cpu_locked(self.root), emc_locked(self.root)
        gpu_fixed = None if gpu is None or gpu["min_mhz"] is None else gpu["min_mhz"] == gpu["max_mhz"]
        parts = [v for v in (cpu, gpu_fixed, emc) if v is not None]
        return {
            "gpu": gpu,
            "nvpmodel": self.nvpmodel(),
            "clocks_locked": all(parts) if parts else None,
            "clocks_locked_parts": {"cpu": cpu, "gpu": gpu_fixed, "emc": emc},
            "oc_events": oc_counters(self.p("/sys/class/hwmon/hwmon*")),
        }

    def changes(self, before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
        out = counter_deltas(before.get("oc_events") or {}, after.get("oc_events") or {}, "over-current events")
        if before.get("clocks_locked"):  # with locked clocks any GPU clock drop is throttling
            g0, g1 = before.get("gpu") or {}, after.get("gpu") or {}
            out += dropped(g0.get("freq_mhz"), g1.get("freq_mhz"), "locked GPU clock")
        return out
