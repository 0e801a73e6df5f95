"""Resident memory of this process in MiB: current (VmRSS) and peak (VmHWM).

``/proc/self/status`` gives both on every Linux board (Jetson, Pi, x86). Without /proc we
fall back to ``getrusage``, which only knows the peak; ``source`` says which one answered.
"""

from __future__ import annotations

import sys
from typing import Dict, Optional

PROC_STATUS = "/proc/self/status"
_KIB_PER_MIB = 1024.0


def parse_proc_status(text: str) -> Dict[str, float]:
    """``{"rss_mb": ..., "peak_mb": ...}`` from the text of /proc/<pid>/status (kB lines)."""
    out: Dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields = rest.split()
            if fields and fields[0].isdigit():
                out["rss_mb" if key == "VmRSS" else "peak_mb"] = int(fields[0]) / _KIB_PER_MIB
    return out


def _rusage_peak_mb() -> Optional[float]:
    try:
        import resource  # absent on Windows
    except ImportError:
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes (getrusage(2) man pages of each).
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else _KIB_PER_MIB
    return maxrss / scale


def read_memory(proc_status: str = PROC_STATUS) -> Dict[str, object]:
    """Current and peak RSS in MiB (None where unknown) and the source that answered."""
    try:
        with open(proc_status) as f:
            parsed = parse_proc_status(f.read())
    except OSError:
        parsed = {}
    if "peak_mb" in parsed:
        return {"rss_mb": parsed.get("rss_mb"), "peak_mb": parsed["peak_mb"], "source": "proc"}
    peak = _rusage_peak_mb()
    return {"rss_mb": None, "peak_mb": peak, "source": "getrusage" if peak is not None else None}


def current_rss_mb(proc_status: str = PROC_STATUS) -> Optional[float]:
    """VmRSS, or the getrusage peak when /proc is absent (an upper bound, better than none)."""
    mem = read_memory(proc_status)
    return mem["rss_mb"] if mem["rss_mb"] is not None else mem["peak_mb"]  # type: ignore[return-value]


def peak_rss_mb(proc_status: str = PROC_STATUS) -> Optional[float]:
    """VmHWM, or ``ru_maxrss`` when /proc is absent."""
    return read_memory(proc_status)["peak_mb"]  # type: ignore[return-value]
