"""Jetson INA3221 rail monitors, read from sysfs (no tegrastats process needed).

JetPack 5/6 expose them through hwmon (``inK_label``, ``inK_input`` mV, ``currK_input``
mA; the hwmonN number changes between boots, so we glob and match labels); JetPack 4
through iio (``in_powerN_input`` mW, ``rail_name_N``). Board power is VDD_IN / POM_5V_IN
when the board has that rail, else the sum of the rails (AGX), as jetson_stats
(jtop/core/power.py) computes it. Only the rails the total needs are read per sample.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional

from .base import Source, read_int, sorted_glob, try_text

HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
_LABEL = re.compile(r"in(\d+)_label$")
_RAIL_NAME = re.compile(r"rail_name_(\d+)$")


class Rail:
    """One channel: power from V*I (hwmon) or from the power file (iio)."""

    def __init__(self, label: str, device: str, volt: Optional[str] = None, curr: Optional[str] = None,
                 power: Optional[str] = None):
        self.label, self.device = label, device
        self.volt, self.curr, self.power = volt, curr, power

    def watts(self) -> float:
        if self.power is not None:
            return read_int(self.power) / 1e3  # mW
        return read_int(self.volt) * read_int(self.curr) / 1e6  # mV * mA  # type: ignore[arg-type]


def hwmon_rails(root_glob: str) -> List[Rail]:
    rails = []
    for hw in sorted_glob(root_glob):
        device = os.path.basename(os.path.dirname(os.path.dirname(hw)))
        for label_path in sorted_glob(os.path.join(hw, "in*_label")):
            m = _LABEL.search(label_path)
            label = try_text(label_path)
            if m is None or not label or label == "NC" or label.lower().startswith("sum"):
                continue  # NC: unconnected channel; "Sum of shunt voltages" is no rail
            volt = os.path.join(hw, "in%s_input" % m.group(1))
            curr = os.path.join(hw, "curr%s_input" % m.group(1))
            if os.path.exists(volt) and os.path.exists(curr):
                rails.append(Rail(label, device, volt=volt, curr=curr))
    return rails


def iio_rails(root_glob: str) -> List[Rail]:
    rails = []
    for dev in sorted_glob(root_glob):
        device = os.path.basename(os.path.dirname(dev))
        for name_path in sorted_glob(os.path.join(dev, "rail_name_*")):
            m = _RAIL_NAME.search(name_path)
            label = try_text(name_path)
            power = os.path.join(dev, "in_power%s_input" % (m.group(1) if m else ""))
            if m is None or not label or label == "NC" or not os.path.exists(power):
                continue
            rails.append(Rail(label, device, power=power))
    return rails


def total_rails(rails: List[Rail]) -> List[Rail]:
    """The input rail alone when the board has one, else every rail."""
    for name in TOTAL_RAILS:
        for rail in rails:
            if rail.label == name:
                return [rail]
    return list(rails)


class Ina3221Source(Source):
    """Board power of a Jetson from its INA3221 monitors (hwmon, else iio)."""

    name = "ina3221"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.rails: List[Rail] = []
        self.interface: Optional[str] = None
        self._total: List[Rail] = []

    def check(self) -> Optional[str]:
        self.rails, self.interface = hwmon_rails(self.p(HWMON_GLOB)), "hwmon"
        if not self.rails:
            self.rails, self.interface = iio_rails(self.p(IIO_GLOB)), "iio"
        if not self.rails:
            return "no INA3221 rails under /sys/bus/i2c/drivers/ina3221 (hwmon) or ina3221x (iio)"
        self._total = total_rails(self.rails)
        self.read()  # a rail that exists but cannot be read is no source
        return None

    def read(self) -> float:
        return sum(rail.watts() for rail in self._total)

    def details(self) -> Dict[str, Any]:
        first = self._total[0].label if self._total else None
        total = first if first in TOTAL_RAILS else "sum of rails"
        return {"interface": self.interface, "total": total,
                "rails_w": {"%s/%s" % (r.device, r.label): round(r.watts(), 4) for r in self.rails}}
