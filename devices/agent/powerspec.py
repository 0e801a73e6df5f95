"""The spec's optional ``power_mode``: the board state a job is measured in (``power/``).

    "power_mode": {"name": "eco", "cpufreq": {"governor": "powersave", "min_freq_khz": null,
                   "max_freq_khz": 1200000}, "nvpmodel": null, "jetson_clocks": false, "settle_s": null}

``name`` is the suite's name for the mode (stored with the result); every other key may be
left out, but a mode must set something. ``cpufreq`` applies to every CPU with a cpufreq
policy; ``nvpmodel`` is a mode id (``nvpmodel -m``); ``jetson_clocks`` true locks the clocks
at the mode's maximum. ``settle_s`` null: the mechanisms' own settle time (``power/``).
Null or absent: the board is measured as it is, and the spec is what older agents read
(an older agent refuses the key as unknown, so it cannot misread it: no protocol step).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from .errors import ProtocolError
from .specfields import get, number, section

GOVERNOR = re.compile(r"^[a-z0-9_]{1,32}$")  # a cpufreq governor's name as sysfs spells it
NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


@dataclass(frozen=True)
class CpufreqMode:
    """``power_mode.cpufreq``: the governor and the frequency limits (kHz) of every CPU."""

    governor: Optional[str] = None
    min_freq_khz: Optional[int] = None
    max_freq_khz: Optional[int] = None


@dataclass(frozen=True)
class PowerMode:
    """``power_mode``: a named board state, applied before the job and restored after it."""

    name: str
    cpufreq: Optional[CpufreqMode] = None
    nvpmodel: Optional[int] = None
    jetson_clocks: bool = False
    settle_s: Optional[float] = None

    @property
    def empty(self) -> bool:
        return self.cpufreq is None and self.nvpmodel is None and not self.jetson_clocks


def power_mode_to_json(mode: PowerMode) -> Dict[str, Any]:
    return asdict(mode)


def _khz(obj: Dict[str, Any], key: str) -> Optional[int]:
    value = get(obj, key, "power_mode.cpufreq.", (int,), nullable=True) if key in obj else None
    if value is not None and value <= 0:
        raise ProtocolError("spec key power_mode.cpufreq.%s must be a positive int (kHz) or null, got %r"
                            % (key, value))
    return value


def _parse_cpufreq(pm: Dict[str, Any]) -> Optional[CpufreqMode]:
    if pm.get("cpufreq") is None:
        return None
    c = section(pm, "cpufreq", ("governor", "min_freq_khz", "max_freq_khz"), "power_mode.")
    governor = get(c, "governor", "power_mode.cpufreq.", (str,), nullable=True) if "governor" in c else None
    if governor is not None and not GOVERNOR.match(governor):
        raise ProtocolError("spec key power_mode.cpufreq.governor must be a governor name ([a-z0-9_]), got %r"
                            % governor)
    lo, hi = _khz(c, "min_freq_khz"), _khz(c, "max_freq_khz")
    if lo is not None and hi is not None and lo > hi:
        raise ProtocolError("spec key power_mode.cpufreq.min_freq_khz (%d) is above max_freq_khz (%d)" % (lo, hi))
    mode = CpufreqMode(governor, lo, hi)
    if mode == CpufreqMode():
        raise ProtocolError("spec key power_mode.cpufreq sets nothing (governor, min_freq_khz, max_freq_khz)")
    return mode


def parse_power_mode(raw: Dict[str, Any]) -> Optional[PowerMode]:
    """The spec's ``power_mode``: null or absent (None), or a mode that sets something."""
    if raw.get("power_mode") is None:
        return None
    pm = section(raw, "power_mode", ("name", "cpufreq", "nvpmodel", "jetson_clocks", "settle_s"))
    name = get(pm, "name", "power_mode.", (str,))
    if not NAME.match(name):
        raise ProtocolError("spec key power_mode.name must be 1-64 of A-Z a-z 0-9 _ . + -, got %r" % name)
    nvp = get(pm, "nvpmodel", "power_mode.", (int,), nullable=True) if "nvpmodel" in pm else None
    if nvp is not None and nvp < 0:
        raise ProtocolError("spec key power_mode.nvpmodel must be a mode id >= 0 or null, got %r" % nvp)
    clocks = get(pm, "jetson_clocks", "power_mode.", (bool,)) if "jetson_clocks" in pm else False
    settle = number(pm, "settle_s", "power_mode.") if pm.get("settle_s") is not None else None
    if settle is not None and not 0 <= settle <= 600:
        raise ProtocolError("spec key power_mode.settle_s must be in [0, 600] or null, got %r" % settle)
    mode = PowerMode(name, _parse_cpufreq(pm), nvp, clocks, settle)
    if mode.empty:
        raise ProtocolError("spec key power_mode %r sets nothing (cpufreq, nvpmodel or jetson_clocks)" % name)
    return mode
