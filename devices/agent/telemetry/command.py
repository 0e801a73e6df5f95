"""An external meter: a configured command that prints watts (or joules) per call.

For USB power meters and lab analyzers the agent cannot read itself. The command runs
without a shell (``shlex.split``) and its first number is taken. ``unit`` says what it
prints: ``W`` (instant power: samples integrated) or ``J`` (a cumulative energy counter:
the window's energy is its delta).
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Dict, List, Optional

from .base import Source

UNITS = ("W", "J")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float:
    m = _NUMBER.search(text)
    if m is None:
        raise ValueError("meter command printed no number: %r" % text[:80])
    return float(m.group(0))


class CommandSource(Source):
    """Runs ``config["command"]`` once per sample."""

    name = "command"
    min_period_ms = 100.0  # a process per reading

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.unit = self.config.get("unit") or "W"
        self.kind = "energy" if self.unit == "J" else "power"
        self.argv: List[str] = []

    def check(self) -> Optional[str]:
        command = self.config.get("command")
        if not command:
            return "no meter command configured (telemetry.power.command)"
        if self.unit not in UNITS:
            return "telemetry.power.unit must be W or J, got %r" % (self.unit,)
        self.argv = shlex.split(command)
        if not self.argv:
            return "the meter command is empty"
        self.read()
        return None

    def read(self) -> float:
        return parse_number(self.run(self.argv))

    def delta(self, first: float, last: float) -> float:
        return last - first

    def details(self) -> Dict[str, Any]:
        return {"command": self.argv, "unit": self.unit}
