"""Raspberry Pi 5 power from its PMIC: ``vcgencmd pmic_read_adc``.

The PMIC reports a current (``X_A``) and a voltage (``X_V``) per rail; power is the sum
of V*I over the rails that have both. EXT5V and BATT have a voltage only: kept in the
details, not in the sum. This is the SoC-side power behind the regulators, not the
power at the USB-C input (that needs an inline meter: the ``command`` source).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

from .base import Source

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=(-?[\d.]+)[AV]\s*$")


def parse_pmic(text: str) -> Dict[str, Any]:
    """``{"power_w", "rails_w": {rail: W}, "volts_only": {rail: V}}`` from pmic_read_adc output."""
    amps: Dict[str, float] = {}
    volts: Dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    rails = {name: amps[name] * volts[name] for name in amps if name in volts}
    return {
        "power_w": sum(rails.values()) if rails else None,
        "rails_w": rails,
        "volts_only": {name: v for name, v in volts.items() if name not in amps},
    }


class Pi5PmicSource(Source):
    """Sum of V*I over the Pi 5 PMIC rails, one ``vcgencmd`` call per sample."""

    name = "pi5-pmic"
    min_period_ms = 100.0  # a process per reading

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.last: Optional[Dict[str, Any]] = None

    def check(self) -> Optional[str]:
        if not self.has_command("vcgencmd"):
            return "vcgencmd not found on PATH"
        self.read()
        return None

    def read(self) -> float:
        parsed = parse_pmic(self.run(["vcgencmd", "pmic_read_adc"]))
        if parsed["power_w"] is None:
            raise ValueError("vcgencmd pmic_read_adc printed no current/voltage pairs (not a Pi 5?)")
        self.last = parsed
        return parsed["power_w"]

    def details(self) -> Dict[str, Any]:
        if self.last is None:
            return {}
        return {"rails_w": {k: round(v, 4) for k, v in self.last["rails_w"].items()},
                "volts_only": self.last["volts_only"]}
