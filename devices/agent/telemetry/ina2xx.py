"""INA219/INA226-family monitors on I2C through the kernel ``ina2xx`` hwmon driver (Pi 4).

The driver names each hwmon after the chip. ``power1_input`` is in microwatts; without it
power is ``in1_input`` (bus voltage, mV) times ``curr1_input`` (mA). Several monitors
are summed (one per supply rail); the details name each.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from .base import Source, read_int, sorted_glob, try_text

CHIPS = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233", "ina238", "ina260", "ina2xx")


def find_monitors(root_glob: str) -> List[Tuple[str, str]]:
    """(hwmon dir, chip name) of every ina2xx-family hwmon."""
    out = []
    for hw in sorted_glob(root_glob):
        name = try_text(os.path.join(hw, "name"))
        if name in CHIPS:
            out.append((hw, name))
    return out


def monitor_watts(hw: str) -> float:
    power = os.path.join(hw, "power1_input")
    if os.path.exists(power):
        return read_int(power) / 1e6  # uW
    return read_int(os.path.join(hw, "in1_input")) * read_int(os.path.join(hw, "curr1_input")) / 1e6


class Ina2xxSource(Source):
    """Sum of the ina2xx-family hwmon monitors' power."""

    name = "ina2xx"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.monitors: List[Tuple[str, str]] = []

    def check(self) -> Optional[str]:
        self.monitors = find_monitors(self.p("/sys/class/hwmon/hwmon*"))
        if not self.monitors:
            return "no INA219/INA226-family hwmon (kernel ina2xx driver) under /sys/class/hwmon"
        self.read()
        return None

    def read(self) -> float:
        return sum(monitor_watts(hw) for hw, _ in self.monitors)

    def details(self) -> Dict[str, Any]:
        return {"monitors_w": {"%s/%s" % (os.path.basename(hw), chip): round(monitor_watts(hw), 4)
                               for hw, chip in self.monitors}}
