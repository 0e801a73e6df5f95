"""Host facts read from the board itself: OS, CPU, RAM, governor, thermal zones, power sensors.

``power_sensors`` lists the sensor files and tools present; ``power_sources`` says, for
each telemetry power source, whether the agent can measure with it here and why not.
``power_state`` is the board's power state now, per power-mode mechanism (``power/``): the
CPUs' governors and limits, the nvpmodel mode, whether jetson_clocks is there, and whether
the agent runs as root (which changing any of them needs).

Every reader takes the filesystem ``root`` ("/" on a board, a fake tree in tests) and turns
a missing or unreadable file into ``None`` or an empty list, never an exception: a probe
must describe a half-configured board, not crash on it.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
from typing import Any, Dict, List, Optional

from .power import describe as describe_power
from .telemetry import probe_power

# Readings at or below this are offline sensors (Jetson prints -256 C for them).
OFFLINE_C = -200.0
POWER_HWMON = ("ina3221", "ina2xx", "ina219", "ina226", "ina260", "ina238")
POWER_TOOLS = ("tegrastats", "vcgencmd")


def _p(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _read(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def _first_line(path: str) -> Optional[str]:
    text = _read(path)
    if text is None:
        return None
    text = text.replace("\x00", "").strip()
    return text.splitlines()[0].strip() if text else None


def os_name(root: str = "/") -> Optional[str]:
    """PRETTY_NAME of /etc/os-release (or /usr/lib/os-release)."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _read(_p(root, path))
        if text is None:
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "PRETTY_NAME":
                return value.strip().strip("\"'") or None
    return None


def cpu_model(root: str = "/") -> Optional[str]:
    """x86 ``model name``; ARM boards: ``Model`` (Raspberry Pi) or ``Hardware``."""
    text = _read(_p(root, "/proc/cpuinfo"))
    if text is None:
        return None
    found = {}  # type: Dict[str, str]
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and value.strip() and key not in found:
            found[key] = value.strip()
    for key in ("model name", "Model", "Hardware"):
        if key in found:
            return found[key]
    return None


def ram_total_mib(root: str = "/") -> Optional[int]:
    text = _read(_p(root, "/proc/meminfo"))
    for line in (text or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                return int(parts[1]) // 1024  # kB
            except (IndexError, ValueError):
                return None
    return None


def governor(root: str = "/") -> Optional[str]:
    return _first_line(_p(root, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"))


def _zone_index(path: str) -> int:
    digits = os.path.basename(path.rstrip("/"))[len("thermal_zone"):]
    return int(digits) if digits.isdigit() else 1 << 30


def thermal_zones(root: str = "/") -> List[Dict[str, Any]]:
    """[{zone, type, temp_c}]; temp_c is None when the zone cannot be read or is offline."""
    zones = []
    for path in sorted(glob.glob(_p(root, "/sys/class/thermal/thermal_zone*")), key=_zone_index):
        raw = _first_line(os.path.join(path, "temp"))
        temp = None  # type: Optional[float]
        try:
            temp = round(int(raw) / 1000.0, 1) if raw is not None else None
        except ValueError:
            temp = None
        if temp is not None and temp <= OFFLINE_C:
            temp = None
        zones.append({"zone": os.path.basename(path), "type": _first_line(os.path.join(path, "type")), "temp_c": temp})
    return zones


def power_sensors(root: str = "/", path: Optional[str] = None) -> List[Dict[str, Any]]:
    """Names of the power sensors present (no readings): RAPL zones, INA hwmon/iio, tools on PATH."""
    found = []  # type: List[Dict[str, Any]]
    for zone in sorted(glob.glob(_p(root, "/sys/class/powercap/intel-rapl:*"))):
        energy = os.path.join(zone, "energy_uj")
        if not os.path.exists(energy):
            continue
        found.append({
            "source": "rapl",
            "name": os.path.basename(zone),
            "label": _first_line(os.path.join(zone, "name")),
            "readable": _read(energy) is not None,
        })
    for hw in sorted(glob.glob(_p(root, "/sys/class/hwmon/hwmon*"))):
        name = _first_line(os.path.join(hw, "name"))
        if name is not None and (name in POWER_HWMON or name.startswith("ina")):
            found.append({"source": "hwmon", "name": name, "label": os.path.basename(hw)})
    for dev in sorted(glob.glob(_p(root, "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"))):  # JetPack <= 4
        found.append({"source": "iio", "name": "ina3221x", "label": os.path.basename(os.path.dirname(dev))})
    for tool in POWER_TOOLS:
        where = shutil.which(tool, path=path)
        if where:
            found.append({"source": "command", "name": tool, "label": where})
    return found


def board_model(root: str = "/") -> Optional[str]:
    """The device-tree model (e.g. "NVIDIA Jetson Orin Nano Developer Kit"); None on x86."""
    return _first_line(_p(root, "/proc/device-tree/model"))


def _power_sources(root: str, path: Optional[str]) -> List[Dict[str, Any]]:
    try:
        return probe_power(root, path=path)
    except Exception as exc:  # a probe describes the board; it never crashes on it
        return [{"name": "?", "kind": None, "available": False, "reason": "%s: %s" % (type(exc).__name__, exc)}]


def numpy_version() -> Optional[str]:
    try:
        import numpy
    except ImportError:
        return None
    return str(numpy.__version__)


def collect(root: str = "/", path: Optional[str] = None) -> Dict[str, Any]:
    """All host facts. ``path`` is the PATH searched for power tools (default: the process's)."""
    model = board_model(root)
    return {
        "arch": platform.machine() or None,
        "os": os_name(root),
        "kernel": platform.release() or None,
        "cpu_model": cpu_model(root),
        "cores": os.cpu_count(),
        "ram_mib": ram_total_mib(root),
        "python": platform.python_version(),
        "numpy": numpy_version(),
        "governor": governor(root),
        "thermal_zones": thermal_zones(root),
        "power_sensors": power_sensors(root, path),
        # What the agent can measure with: each power source, available or why not.
        "power_sources": _power_sources(root, path),
        "power_state": describe_power(root, path),
        "board_model": model,
        "jetson_model": model if model and "jetson" in model.lower() else None,
    }
