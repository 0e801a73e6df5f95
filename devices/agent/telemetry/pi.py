"""Raspberry Pi state through ``vcgencmd``: temperature, ARM clock, throttle bits.

``get_throttled`` bits (Raspberry Pi documentation): 0 under-voltage, 1 ARM frequency
capped, 2 throttled, 3 soft temperature limit, all "now"; bits 16-19 are the same, sticky
since boot. A window is throttled when a "now" bit is set at either snapshot or a sticky
bit appeared during it (a sticky bit already set before the job is history, not this run).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from .base import Source, describe

BITS = ("under_voltage", "arm_freq_capped", "throttled", "soft_temp_limit")
STICKY_SHIFT = 16
_TEMP = re.compile(r"temp=(-?[\d.]+)'C")
_CLOCK = re.compile(r"frequency\(\d+\)=(\d+)")
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+|\d+)")


def parse_temp(text: str) -> Optional[float]:
    m = _TEMP.search(text)
    return float(m.group(1)) if m else None


def parse_clock_mhz(text: str) -> Optional[float]:
    m = _CLOCK.search(text)
    return round(int(m.group(1)) / 1e6, 1) if m else None


def parse_throttled(text: str) -> Optional[int]:
    m = _THROTTLED.search(text)
    return int(m.group(1), 0) if m else None


def decode_throttled(value: int) -> Dict[str, List[str]]:
    """``{"now": [...], "sticky": [...]}`` names of the set bits."""
    return {
        "now": [name for i, name in enumerate(BITS) if value >> i & 1],
        "sticky": [name for i, name in enumerate(BITS) if value >> (i + STICKY_SHIFT) & 1],
    }


class PiSource(Source):
    """vcgencmd ``measure_temp``, ``measure_clock arm`` and ``get_throttled``."""

    name = "pi"
    role = "state"

    def check(self) -> Optional[str]:
        if not self.has_command("vcgencmd"):
            return "vcgencmd not found on PATH"
        if parse_throttled(self.run(["vcgencmd", "get_throttled"])) is None:
            return "vcgencmd get_throttled printed no throttled=0x... line"
        return None

    def snapshot(self) -> Dict[str, Any]:
        errors: List[str] = []

        def ask(args: List[str], parse: Any) -> Any:
            try:
                return parse(self.run(["vcgencmd"] + args))
            except Exception as exc:  # one failed query must not lose the others
                errors.append(describe(exc))
                return None

        raw = ask(["get_throttled"], parse_throttled)
        out = {
            "temp_c": ask(["measure_temp"], parse_temp),
            "arm_mhz": ask(["measure_clock", "arm"], parse_clock_mhz),
            "throttled_raw": None if raw is None else hex(raw),
            "throttled_bits": None if raw is None else decode_throttled(raw),
        }  # type: Dict[str, Any]
        if errors:
            out["errors"] = errors
        return out

    def changes(self, before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
        out = []
        b0, b1 = before.get("throttled_bits"), after.get("throttled_bits")
        now = sorted(set((b0 or {}).get("now", [])) | set((b1 or {}).get("now", [])))
        if now:
            out.append("Pi throttled now: %s" % ", ".join(now))
        if b0 is not None and b1 is not None:
            new = sorted(set(b1["sticky"]) - set(b0["sticky"]))
            if new:
                out.append("Pi sticky throttle bits set during the window: %s" % ", ".join(new))
        return out  # a lower ARM clock alone may be the governor idling; bits 1-2 say capped
