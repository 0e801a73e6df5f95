"""The spec's optional ``telemetry`` key, parsed strictly (faults are ProtocolErrors).

    "telemetry": {"power": {"source": "auto", "command": null, "unit": "W"},
                  "cooldown": {"max_temp_c": null, "max_wait_s": 120, "idle_temp_c": null, "delta_c": null},
                  "sample_ms": 50, "idle_s": 1.0}

Every key may be left out. ``sample_ms`` 50: 20 samples a second, far finer than
tegrastats' and jtop's 1 s default, cheap enough not to disturb the timed loop.
``idle_s`` 1.0: the idle baseline before the job. ``max_wait_s`` 120: the inventory's
default cooldown bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..errors import ProtocolError
from . import POWER_CHOICES
from .command import UNITS


@dataclass(frozen=True)
class PowerSettings:
    source: str = "auto"
    command: Optional[str] = None
    unit: str = "W"


@dataclass(frozen=True)
class CooldownSettings:
    max_temp_c: Optional[float] = None
    max_wait_s: float = 120.0
    idle_temp_c: Optional[float] = None
    delta_c: Optional[float] = None


@dataclass(frozen=True)
class TelemetrySettings:
    power: PowerSettings = field(default_factory=PowerSettings)
    cooldown: CooldownSettings = field(default_factory=CooldownSettings)
    sample_ms: float = 50.0
    idle_s: float = 1.0


def _obj(value: Any, where: str, allowed: Tuple[str, ...]) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("spec key %s must be an object, got %r" % (where, value))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ProtocolError("unknown spec key %s.%s (allowed: %s)" % (where, unknown[0], ", ".join(allowed)))
    return value


def _number(obj: Dict[str, Any], key: str, where: str, default: Any, nullable: bool = False,
            minimum: float = 0.0) -> Any:
    value = obj.get(key, default)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ProtocolError("spec key %s.%s must be a number >= %g%s, got %r"
                            % (where, key, minimum, " or null" if nullable else "", value))
    return float(value)


def _text(obj: Dict[str, Any], key: str, where: str, default: Any, choices: Tuple[str, ...] = ()) -> Any:
    value = obj.get(key, default)
    if value is None and not choices:
        return None
    if not isinstance(value, str) or (choices and value not in choices):
        want = "one of %s" % ", ".join(choices) if choices else "a string or null"
        raise ProtocolError("spec key %s.%s must be %s, got %r" % (where, key, want, value))
    return value


def parse_telemetry(raw: Any) -> TelemetrySettings:
    """TelemetrySettings from the spec's ``telemetry`` value (None: all defaults)."""
    tel = _obj(raw, "telemetry", ("power", "cooldown", "sample_ms", "idle_s"))
    power = _obj(tel.get("power"), "telemetry.power", ("source", "command", "unit"))
    cool = _obj(tel.get("cooldown"), "telemetry.cooldown", ("max_temp_c", "max_wait_s", "idle_temp_c", "delta_c"))
    sample_ms = _number(tel, "sample_ms", "telemetry", 50.0)
    if sample_ms < 1:
        raise ProtocolError("spec key telemetry.sample_ms must be >= 1, got %r" % sample_ms)
    return TelemetrySettings(
        power=PowerSettings(
            source=_text(power, "source", "telemetry.power", "auto", POWER_CHOICES),
            command=_text(power, "command", "telemetry.power", None),
            unit=_text(power, "unit", "telemetry.power", "W", UNITS),
        ),
        cooldown=CooldownSettings(
            max_temp_c=_number(cool, "max_temp_c", "telemetry.cooldown", None, nullable=True, minimum=-273.0),
            max_wait_s=_number(cool, "max_wait_s", "telemetry.cooldown", 120.0),
            idle_temp_c=_number(cool, "idle_temp_c", "telemetry.cooldown", None, nullable=True, minimum=-273.0),
            delta_c=_number(cool, "delta_c", "telemetry.cooldown", None, nullable=True),
        ),
        sample_ms=sample_ms,
        idle_s=_number(tel, "idle_s", "telemetry", 1.0),
    )
