"""System RAM in use, MemTotal - MemAvailable from /proc/meminfo.

On a Jetson the GPU allocates from the same RAM, so a process's RSS misses the model's
GPU buffers: the system-wide delta across the job shows them (docs/measurement.md,
"Telemetry").
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .base import Source, try_text


def parse_meminfo(text: str) -> Dict[str, int]:
    """``{key: kB}`` of /proc/meminfo."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key.strip()] = int(fields[0])
    return out


def used_mb(text: str) -> Optional[float]:
    info = parse_meminfo(text)
    if "MemTotal" not in info or "MemAvailable" not in info:
        return None
    return round((info["MemTotal"] - info["MemAvailable"]) / 1024.0, 1)


class MemorySource(Source):
    """System RAM used (MiB)."""

    name = "memory"
    role = "state"

    def check(self) -> Optional[str]:
        text = try_text(self.p("/proc/meminfo"))
        if text is None or used_mb(text) is None:
            return "no /proc/meminfo with MemTotal and MemAvailable"
        return None

    def snapshot(self) -> Dict[str, Any]:
        return {"ram_used_mb": used_mb(try_text(self.p("/proc/meminfo")) or "")}
