"""tegrastats, the Jetson fallback: a process printing one status line per interval.

Used when the INA3221 sysfs cannot be read. The parser takes every variant of the line we
know of (real lines are published in the tests of DataDog's datadog-agent, ``jetson_test.go``,
and of rbonghi/jetson_stats, ``tests/test_06_tegra_parse.py``): rails with or without
``mW``, with 2 or 3 values (current/average[/max]), a timestamp prefix (JetPack 5+), ``off``
CPU cores, per-GPC ``GR3D_FREQ 0%@[305,305]`` arrays, ``-256C`` for an offline sensor, the
fixed ``PMIC@100C`` placeholder, and ``GR3D_FREQ 12%`` with no ``@MHz`` (no root). Board
power is VDD_IN / POM_5V_IN when present, else the sum of the rails (as jetson_stats does).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any, Dict, Iterable, List, Optional, Union

from .base import Source

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
OFFLINE_C = -200.0
_RAIL_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RAIL_VALUES = re.compile(r"^(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?$")
_TEMP = re.compile(r"^([A-Za-z][\w\-]*)@(-?\d+(?:\.\d+)?)C$")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_ENGINE = re.compile(r"\b(GR3D_FREQ|EMC_FREQ) (\d+)%(?:@(\[[\d,]+\]|\d+))?")
_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")

Freq = Union[int, List[int], None]


def _freq(text: Optional[str]) -> Freq:
    if not text:
        return None
    if text.startswith("["):
        return [int(v) for v in text.strip("[]").split(",") if v]
    return int(text)


def parse_line(line: str) -> Dict[str, Any]:
    """One tegrastats line -> rails (mW), board power (W), temperatures, RAM, CPU, GPU."""
    out: Dict[str, Any] = {"rails_mw": {}, "rails_avg_mw": {}, "temps_c": {}, "offline_sensors": [],
                           "ram_used_mb": None, "ram_total_mb": None, "cpu": [],
                           "gpu_load_pct": None, "gpu_freq_mhz": None, "emc_load_pct": None, "emc_freq_mhz": None}
    m = _RAM.search(line)
    if m:
        out["ram_used_mb"], out["ram_total_mb"] = int(m.group(1)), int(m.group(2))
    m = _CPU.search(line)
    if m:
        for core in m.group(1).split(","):
            cm = _CORE.match(core.strip())
            out["cpu"].append(None if cm is None else  # "off": an offline core
                              {"load_pct": int(cm.group(1)), "freq_mhz": int(cm.group(2)) if cm.group(2) else None})
    for m in _ENGINE.finditer(line):
        key = "gpu" if m.group(1) == "GR3D_FREQ" else "emc"
        out[key + "_load_pct"], out[key + "_freq_mhz"] = int(m.group(2)), _freq(m.group(3))
    tokens = line.split()
    for i, tok in enumerate(tokens):
        tm = _TEMP.match(tok)
        if tm:
            name, value = tm.group(1), float(tm.group(2))
            if name.upper() == "PMIC" and value == 100.0:
                continue  # a fixed placeholder, not a reading
            if value <= OFFLINE_C:
                out["offline_sensors"].append(name)
            else:
                out["temps_c"][name] = value
            continue
        rm = _RAIL_VALUES.match(tokens[i + 1]) if i + 1 < len(tokens) else None
        if rm and _RAIL_NAME.match(tok):
            out["rails_mw"][tok] = int(rm.group(1))
            out["rails_avg_mw"][tok] = int(rm.group(2))
    rails = out["rails_mw"]
    total = next((name for name in TOTAL_RAILS if name in rails), None)
    out["total"] = total or ("sum of rails" if rails else None)
    out["power_w"] = (rails[total] if total else sum(rails.values())) / 1e3 if rails else None
    out["temp_max_c"] = max(out["temps_c"].values()) if out["temps_c"] else None
    return out


class _Process:
    """tegrastats as a child process; ``lines`` yields its stdout lines."""

    def __init__(self, argv: List[str]):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     universal_newlines=True, bufsize=1)
        self.lines: Iterable[str] = self.proc.stdout  # type: ignore[assignment]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class TegrastatsSource(Source):
    """Board power from a ``tegrastats --interval <ms>`` process started for the window.

    ``spawn`` (argv -> object with ``lines`` and ``close()``) is injectable so tests feed
    recorded lines. Lines are timestamped on arrival; since tegrastats prints at a fixed
    interval, the sampler averages them rather than trusting arrival times (a pipe may
    deliver them in bursts).
    """

    name = "tegrastats"
    kind = "stream"

    def __init__(self, *args: Any, spawn: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._spawn = spawn or _Process
        self.last: Optional[Dict[str, Any]] = None

    def check(self) -> Optional[str]:
        if not self.has_command("tegrastats"):
            return "tegrastats not found on PATH"
        return None

    def argv(self, interval_ms: float) -> List[str]:
        argv = [shutil.which("tegrastats", path=self.path) or "tegrastats", "--interval", str(max(1, int(interval_ms)))]
        stdbuf = shutil.which("stdbuf", path=self.path)
        return ["stdbuf", "-oL"] + argv if stdbuf else argv  # line-buffer its stdout into our pipe

    def open_stream(self, interval_ms: float) -> Any:
        return self._spawn(self.argv(interval_ms))

    def parse(self, line: str) -> Optional[float]:
        """Board watts of one line (None when it carries no rails)."""
        parsed = parse_line(line)
        if parsed["power_w"] is None:
            return None
        self.last = parsed
        return parsed["power_w"]

    def details(self) -> Dict[str, Any]:
        if self.last is None:
            return {}
        keep = ("total", "rails_mw", "temps_c", "ram_used_mb", "gpu_load_pct", "gpu_freq_mhz")
        return {key: self.last[key] for key in keep}
