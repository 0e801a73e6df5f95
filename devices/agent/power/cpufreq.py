"""CPU governor and frequency limits through sysfs: every CPU's ``cpufreq`` directory.

Per CPU the mode writes ``scaling_governor``, then ``scaling_min_freq`` / ``scaling_max_freq``
(kHz), in the order the kernel accepts (never a minimum above the current maximum); the
saved state is each CPU's governor and limits. Refused before anything changes: no
``cpu*/cpufreq`` (a VM, a container), a governor missing from ``scaling_available_governors``,
a frequency outside ``cpuinfo_min_freq``..``cpuinfo_max_freq``, a file the agent cannot write
(sysfs needs root).
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ..errors import PowerModeError
from ..powerspec import GOVERNOR, CpufreqMode
from ..telemetry.base import sorted_glob
from .board import Mechanism

CPUS = "/sys/devices/system/cpu/cpu[0-9]*"
_CPU = re.compile(r"cpu(\d+)$")
_LIMITS = (("min_freq_khz", "scaling_min_freq"), ("max_freq_khz", "scaling_max_freq"))


def _one(values: Dict[str, Any]) -> Any:
    """The CPUs' common value, or the value per CPU when they differ."""
    distinct = set(values.values())
    return distinct.pop() if len(distinct) == 1 else dict(values)


class Cpufreq(Mechanism):
    """``power_mode.cpufreq`` on every CPU that has a cpufreq policy."""

    key = "cpufreq"
    settle_s = 0.0

    def cpus(self) -> List[Tuple[str, str]]:
        """(name, cpufreq directory) of every CPU that has one; PowerModeError when none has."""
        found = [(os.path.basename(c), os.path.join(c, "cpufreq")) for c in sorted_glob(self.board.p(CPUS))
                 if _CPU.search(c) and os.path.isdir(os.path.join(c, "cpufreq"))]
        if not found:
            raise PowerModeError("no cpufreq on this board (%s absent: a VM or a container?)"
                                 % self.board.p("/sys/devices/system/cpu/cpu0/cpufreq"))
        return found

    def check(self, setting: CpufreqMode) -> None:
        b = self.board
        for name, d in self.cpus():
            offered = (b.read(os.path.join(d, "scaling_available_governors")) or "").split()
            if setting.governor is not None and offered and setting.governor not in offered:
                raise PowerModeError("governor %r is not offered by %s (scaling_available_governors: %s)"
                                     % (setting.governor, name, " ".join(offered)))
            lo, hi = (b.read_int(os.path.join(d, f)) for f in ("cpuinfo_min_freq", "cpuinfo_max_freq"))
            for key, _ in _LIMITS:
                khz = getattr(setting, key)
                if khz is not None and lo is not None and hi is not None and not lo <= khz <= hi:
                    raise PowerModeError("%s %d kHz is outside %s's cpuinfo_min_freq..cpuinfo_max_freq (%d..%d kHz)"
                                         % (key, khz, name, lo, hi))
            for path in self._files(d, setting):
                if not b.writable(path):
                    raise PowerModeError("cannot write %s: %s%s" % (path, "permission denied" if b.euid else
                                         "not writable (a read-only sysfs?)", b.needs_root()))

    @staticmethod
    def _files(d: str, setting: CpufreqMode) -> List[str]:
        names = (["scaling_governor"] if setting.governor is not None else []) + \
            [f for key, f in _LIMITS if getattr(setting, key) is not None]
        return [os.path.join(d, n) for n in names]

    def save(self) -> Dict[str, Any]:
        b = self.board
        cpus = {}
        for name, d in self.cpus():
            cpus[name] = {"governor": b.read(os.path.join(d, "scaling_governor"))}
            cpus[name].update({key: b.read_int(os.path.join(d, f)) for key, f in _LIMITS})
        return {"cpus": cpus}

    def apply(self, setting: CpufreqMode) -> None:
        for _, d in self.cpus():
            if setting.governor is not None:
                self.board.write(os.path.join(d, "scaling_governor"), setting.governor)
            self._limits(d, setting.min_freq_khz, setting.max_freq_khz)

    def _limits(self, d: str, lo: Optional[int], hi: Optional[int]) -> None:
        """Write the limits given, the maximum first when the new minimum is above the current maximum."""
        b = self.board
        now_hi = b.read_int(os.path.join(d, "scaling_max_freq"))
        steps = [("scaling_min_freq", lo), ("scaling_max_freq", hi)]
        if lo is not None and now_hi is not None and lo > now_hi:
            steps.reverse()
        for name, khz in steps:
            if khz is not None:
                b.write(os.path.join(d, name), khz)

    def read(self) -> Dict[str, Any]:
        b = self.board
        values = {"governor": {}, "min_freq_khz": {}, "max_freq_khz": {}}  # type: Dict[str, Dict[str, Any]]
        cpus = self.cpus()
        for name, d in cpus:
            values["governor"][name] = b.read(os.path.join(d, "scaling_governor"))
            for key, f in _LIMITS:
                values[key][name] = b.read_int(os.path.join(d, f))
        out = {key: _one(per_cpu) for key, per_cpu in values.items()}  # type: Dict[str, Any]
        out["cpus"] = len(cpus)
        return out

    def verify(self, setting: CpufreqMode, state: Dict[str, Any]) -> Optional[str]:
        gov = state.get("governor")
        if setting.governor is not None and gov != setting.governor:
            return "the CPUs run governor %s after %r was written" % (gov, setting.governor)
        top = state.get("max_freq_khz")
        if setting.max_freq_khz is not None and (not isinstance(top, int) or top > setting.max_freq_khz):
            return "scaling_max_freq reads %s after %d kHz was written" % (top, setting.max_freq_khz)
        return None

    def restore(self, saved: Dict[str, Any]) -> None:
        cpus = dict(self.cpus())
        for name, state in sorted((saved.get("cpus") or {}).items()):
            d = cpus.get(name)
            if d is None or not isinstance(state, dict):
                continue  # a CPU gone offline since: nothing of it to put back
            if isinstance(state.get("governor"), str) and GOVERNOR.match(state["governor"]):
                self.board.write(os.path.join(d, "scaling_governor"), state["governor"])
            lo, hi = (state.get(key) for key, _ in _LIMITS)
            self._limits(d, lo if isinstance(lo, int) else None, hi if isinstance(hi, int) else None)
