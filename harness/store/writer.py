"""Who is writing a run, and whether that process is still alive.

A sweep records itself in its run (``runs.writer_*``): the host name, its pid, a token that
tells that pid's process from a later one given the same pid, and when it took the run; a
thread refreshes ``runs.heartbeat`` every ``HEARTBEAT_S`` seconds while it writes
(``Store.keeping_alive``). ``harness sweep --resume`` refuses a run whose writer is alive:

- where the writer's pids are visible (same kernel boot and pid namespace, read from
  ``/proc``): alive while its pid exists *and* started at the recorded time (field 22 of
  ``/proc/PID/stat``, clock ticks since boot), so a pid the kernel reused is not mistaken for it;
- anywhere else (another host, another container, no ``/proc``): alive while its heartbeat
  is younger than ``STALE_AFTER_S`` (this assumes the hosts' clocks agree to within a minute);
  without ``/proc`` on this host, a pid that no longer exists here is dead at once.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # ten missed heartbeats


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _namespace() -> str | None:
    """Where a pid means the same process as here: the kernel's boot and our pid namespace."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = None
    return f"{boot}/{ns}" if boot and ns else None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot: ``/proc/PID/stat`` field 22), or None
    where it does not exist, has exited (a zombie not yet reaped) or cannot be read."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # Field 2, the command, is in parentheses and may hold spaces and ')': fields 3.. follow the last ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    try:
        return None if rest[0] in ("Z", "X", "x") else int(rest[22 - 3])
    except (IndexError, ValueError):
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Writer:
    """A process writing a run. ``token``: ``NAMESPACE:TICKS`` (None where ``/proc`` is missing)."""

    host: str
    pid: int
    token: str | None
    since: float
    heartbeat: float | None = None

    @classmethod
    def this_process(cls, now: float | None = None) -> Writer:
        now = time.time() if now is None else now
        ns, ticks = _namespace(), start_ticks(os.getpid())
        return cls(platform.node(), os.getpid(), f"{ns}:{ticks}" if ns and ticks is not None else None, now, now)

    def is_alive(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        ns, _, ticks = (self.token or "").rpartition(":")
        if ns and ns == _namespace():  # its pids are ours to look at
            if not _pid_exists(self.pid):
                return False
            return str(start_ticks(self.pid)) == ticks
        if self.token is None and self.host == platform.node() and not _pid_exists(self.pid):
            return False  # no /proc where it ran (macOS): its pid is gone from this host, so is it
        return self.heartbeat is not None and now - self.heartbeat < STALE_AFTER_S

    def is_this_process(self) -> bool:
        me = Writer.this_process()
        return (self.host, self.pid, self.token) == (me.host, me.pid, me.token) and self.token is not None

    def describe(self, now: float | None = None) -> str:
        """``pid 4711 on host lab-3 since 2026-05-01 02:00:03 UTC (heartbeat 12 s ago)``."""
        now = time.time() if now is None else now
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        beat = "" if self.heartbeat is None else f" (heartbeat {max(0.0, now - self.heartbeat):.0f} s ago)"
        return f"pid {self.pid} on host {self.host} since {since}{beat}"
