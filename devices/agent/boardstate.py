"""The board's state just before the timed window, and waiting for a quiet board
(``measure.quiet``; docs/measurement.md, trap 4: someone else on the board ruins the measurement).

Read after the model is loaded and before warm-up, so the ~1 s it takes overlaps nothing
timed:

- other processes' CPU use over ``SAMPLE_S``: the busy jiffies of ``/proc/stat``'s ``cpu``
  line (user + nice + system + irq + softirq + steal; guest time is already inside user and
  nice) minus this process's own (``/proc/self/stat`` utime + stime + cutime + cstime), as a
  percentage of all CPUs' jiffies in the same interval;
- the load average (``/proc/loadavg``) and it per CPU (CPUs: the ``cpuN`` lines of
  ``/proc/stat``). The 1-minute figure remembers the last minute, including a previous job's
  own window: a job that kept every CPU busy leaves ~1.0 per CPU, which the default
  ``max_load_per_cpu: 1.0`` (strictly above) still lets through;
- available memory (``MemAvailable`` of ``/proc/meminfo``, parsed by ``telemetry.meminfo``);
- CPU governors and pinned clocks (``telemetry.cpufreq``), and on a Jetson the nvpmodel
  mode and locked clocks (``telemetry.jetson``): read once, not on every re-check.

Above any threshold the agent re-checks every ``SAMPLE_S`` (each check is itself a 1 s
reading) until the board is quiet or the wait runs out, then measures anyway and marks the
result ``noisy`` with the threshold, the value and how long it waited. Nothing here raises:
a missing ``/proc`` (a macOS dev box) gives ``reason: "board state unreadable: ..."`` and
no mark, never a failed job. ``root`` is injectable so tests feed fake ``/proc`` files.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .telemetry import make
from .telemetry.base import Runner, describe, read_text, sys_path
from .telemetry.meminfo import parse_meminfo

SAMPLE_S = 1.0
# /proc/stat cpu fields: user nice system idle iowait irq softirq steal guest guest_nice.
_BUSY = (0, 1, 2, 5, 6, 7)
_ALL = 8  # user .. steal; guest and guest_nice are already counted in user and nice


def read_cpu_jiffies(root: str = "/") -> Tuple[int, int, int]:
    """(busy, total, cpus) jiffies of all CPUs since boot; raises OSError/ValueError."""
    busy = total = None
    cpus = 0
    for line in read_text(sys_path(root, "/proc/stat")).splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "cpu":
            values = [int(v) for v in fields[1:1 + _ALL]]
            values += [0] * (_ALL - len(values))
            busy, total = sum(values[i] for i in _BUSY), sum(values)
        elif fields[0].startswith("cpu") and fields[0][3:].isdigit():
            cpus += 1
    if busy is None or total is None:
        raise ValueError("no 'cpu' line in /proc/stat")
    return busy, total, cpus


def read_own_jiffies(root: str = "/") -> int:
    """This process's CPU time, with its waited-for children: utime + stime + cutime + cstime."""
    text = read_text(sys_path(root, "/proc/self/stat"))
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)"; comm may hold spaces
    # 0-based from the state field: utime 11, stime 12, cutime 13, cstime 14
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def read_loadavg(root: str = "/") -> Tuple[float, float, float]:
    fields = read_text(sys_path(root, "/proc/loadavg")).split()
    return float(fields[0]), float(fields[1]), float(fields[2])


def read_mem_available_mb(root: str = "/") -> float:
    info = parse_meminfo(read_text(sys_path(root, "/proc/meminfo")))
    if "MemAvailable" not in info:
        raise ValueError("no MemAvailable in /proc/meminfo")
    return round(info["MemAvailable"] / 1024.0, 1)


def clock_state(root: str = "/", runner: Optional[Runner] = None) -> Dict[str, Any]:
    """Governors / pinned clocks, and a Jetson's nvpmodel / locked clocks, from the telemetry
    state sources (whichever this board has; None where it has not)."""
    out: Dict[str, Any] = {"governors": None, "clocks_pinned": None, "nvpmodel": None, "clocks_locked": None}
    cpufreq = make("cpufreq", root, runner)
    if cpufreq.probe()["available"]:
        snap = cpufreq.snapshot()
        out.update(governors=snap.get("governors"), clocks_pinned=snap.get("clocks_pinned"))
    jetson = make("jetson", root, runner)
    if jetson.probe()["available"]:
        snap = jetson.snapshot()
        out.update(nvpmodel=(snap.get("nvpmodel") or {}).get("mode"), clocks_locked=snap.get("clocks_locked"))
    return out


class BoardState:
    """Reads the board's state over ``sample_s`` and waits for it to be quiet.

    ``sleep`` and ``clock`` are injectable: a test's ``sleep`` may rewrite the fake /proc
    files between the two readings of one sample.
    """

    def __init__(self, root: str = "/", runner: Optional[Runner] = None, sample_s: float = SAMPLE_S,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.root = root
        self.runner = runner
        self.sample_s = sample_s
        self._sleep = sleep
        self._clock = clock

    def _try(self, what: str, fn: Callable[[], Any], errors: List[str]) -> Any:
        try:
            return fn()
        except Exception as exc:
            errors.append("%s: %s" % (what, describe(exc)))
            return None

    def begin(self) -> Dict[str, Any]:
        """Start a reading now; ``sample(since=...)`` ends it. The warm-up runs in between, so a
        quiet board costs no extra second: this process's own CPU time is taken out anyway."""
        errors: List[str] = []
        root = self.root
        return {"cpu": self._try("/proc/stat", lambda: read_cpu_jiffies(root), errors),
                "own": self._try("/proc/self/stat", lambda: read_own_jiffies(root), errors),
                "t": self._clock(), "errors": errors}

    def sample(self, since: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One reading: other processes' CPU use over at least ``sample_s`` (from ``since``,
        a ``begin()``, when given), load, memory."""
        start = since if since is not None else self.begin()
        errors = list(start["errors"])
        root = self.root
        cpu0, own0 = start["cpu"], start["own"]
        rest = self.sample_s - (self._clock() - start["t"])
        if rest > 0:
            self._sleep(rest)
        cpu1 = self._try("/proc/stat", lambda: read_cpu_jiffies(root), []) if cpu0 is not None else None
        own1 = self._try("/proc/self/stat", lambda: read_own_jiffies(root), []) if own0 is not None else None
        other: Optional[float] = None
        busy: Optional[float] = None
        cpus: Optional[int] = None
        if cpu0 is not None and cpu1 is not None:
            cpus = cpu1[2] or None
            d_total = cpu1[1] - cpu0[1]
            d_busy = cpu1[0] - cpu0[0]
            d_own = (own1 - own0) if own0 is not None and own1 is not None else 0
            if d_total > 0:
                other = round(max(0.0, min(100.0, 100.0 * (d_busy - d_own) / d_total)), 1)
                busy = round(max(0.0, min(100.0, 100.0 * d_busy / d_total)), 1)
            else:
                errors.append("/proc/stat: no jiffies elapsed in %g s" % self.sample_s)
        if cpus is None:
            cpus = os.cpu_count()
        load = self._try("/proc/loadavg", lambda: read_loadavg(root), errors)
        mem = self._try("/proc/meminfo", lambda: read_mem_available_mb(root), errors)
        return {
            "other_cpu_pct": other,
            "cpu_busy_pct": busy,  # everyone's, this process included
            "cpus": cpus,
            "load_1m": None if load is None else load[0],
            "load_5m": None if load is None else load[1],
            "load_15m": None if load is None else load[2],
            "load_per_cpu": None if load is None or not cpus else round(load[0] / cpus, 3),
            "mem_available_mb": mem,
            "errors": errors,
        }

    @staticmethod
    def breaches(state: Dict[str, Any], quiet: Any) -> List[str]:
        """Which thresholds of ``quiet`` (spec.QuietSettings) the reading is past."""
        out = []
        other, load, mem = state.get("other_cpu_pct"), state.get("load_per_cpu"), state.get("mem_available_mb")
        if other is not None and other > quiet.max_other_cpu_pct:
            out.append("other processes used %.1f%% of the CPUs (max_other_cpu_pct %g)"
                       % (other, quiet.max_other_cpu_pct))
        if load is not None and load > quiet.max_load_per_cpu:
            out.append("load average %.2f per CPU (max_load_per_cpu %g)" % (load, quiet.max_load_per_cpu))
        if mem is not None and mem < quiet.min_free_mb:
            out.append("available memory %.0f MB (min_free_mb %g)" % (mem, quiet.min_free_mb))
        return out

    def settle(self, quiet: Any, max_wait_s: float,
               since: Optional[Dict[str, Any]] = None) -> Tuple[Dict[str, Any], Optional[str]]:
        """(board_state, noisy): read the state (the first reading from ``since``), and while a
        threshold is past, re-read it (each reading takes ``sample_s``) as long as ``max_wait_s``
        allows; ``checks`` > 1 in the state says it waited. ``noisy`` is None when the last
        reading was quiet or nothing could be read. Never raises."""
        try:
            return self._settle(quiet, max_wait_s, since)
        except Exception as exc:  # a bug here must not fail the job
            return {"reason": "board state unreadable: %s" % describe(exc), "waited_s": 0.0}, None

    def _settle(self, quiet: Any, max_wait_s: float,
                since: Optional[Dict[str, Any]]) -> Tuple[Dict[str, Any], Optional[str]]:
        errors: List[str] = []
        clocks = self._try("clock state", lambda: clock_state(self.root, self.runner), errors) or {}
        state = self.sample(since)
        checks = 1
        first_done = self._clock()
        why = self.breaches(state, quiet)
        while why and self._clock() - first_done + self.sample_s <= max_wait_s:
            state = self.sample()
            checks += 1
            why = self.breaches(state, quiet)
        waited = round(self._clock() - first_done, 3) if checks > 1 else 0.0
        errors += state.pop("errors")
        state.update(clocks)
        state.update(sample_s=self.sample_s, checks=checks, waited_s=waited,
                     reason="board state unreadable: " + "; ".join(errors) if errors else None)
        noisy = None
        if why:
            noisy = "%s; measured anyway after waiting %.0f s (wait limit %.0f s)" % ("; ".join(why), waited,
                                                                                    max_wait_s)
        return state, noisy
