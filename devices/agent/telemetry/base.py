"""What every telemetry source shares: sysfs reads under a root, commands through a runner.

Sources take a filesystem ``root`` ("/" on a board, a fake tree in tests) and an optional
``runner`` (argv -> stdout) so tests feed recorded command output. ``probe`` never raises:
a missing or broken sensor is a reason string, because telemetry must never fail a job.
``read`` may raise; the sampler counts the error and goes on.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from typing import Any, Callable, Dict, List, Optional

Runner = Callable[[List[str]], str]
COMMAND_TIMEOUT_S = 5.0
_DIGITS = re.compile(r"(\d+)")


def sys_path(root: str, path: str) -> str:
    """``path`` (absolute on the board) under ``root``."""
    return os.path.join(root, path.lstrip("/"))


def read_text(path: str) -> str:
    """The stripped text of a (sysfs) file; raises OSError."""
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        return f.read().replace("\x00", "").strip()


def read_int(path: str) -> int:
    """The first integer of a file; raises OSError or ValueError."""
    text = read_text(path)
    if not text:
        raise ValueError("%s is empty" % path)
    return int(text.split()[0])


def try_text(path: str) -> Optional[str]:
    try:
        return read_text(path)
    except (OSError, ValueError):
        return None


def try_int(path: str) -> Optional[int]:
    try:
        return read_int(path)
    except (OSError, ValueError):
        return None


def natural_key(path: str) -> List[Any]:
    """Sort key that puts hwmon2 before hwmon10."""
    return [int(p) if p.isdigit() else p for p in _DIGITS.split(path)]


def sorted_glob(pattern: str) -> List[str]:
    return sorted(glob.glob(pattern), key=natural_key)


def run_command(argv: List[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
    """stdout of ``argv`` (no shell); RuntimeError on a nonzero exit."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("%s exited with %d: %s" % (argv[0], proc.returncode, proc.stderr.strip()[:200]))
    return proc.stdout


def describe(exc: BaseException) -> str:
    return "%s: %s" % (type(exc).__name__, exc)


class Source:
    """One telemetry source.

    Class attributes:
        name: key in ``SOURCES`` and in specs.
        role: "power" (has ``read``) or "state" (has ``snapshot`` and ``changes``).
        kind: for power sources, how energy is obtained: "power" (``read`` gives watts,
            energy = trapezoid of timestamped samples), "energy" (``read`` gives a counter,
            ``delta`` gives joules between two readings, wrap-safe) or "stream" (a process
            prints samples: tegrastats).
        min_period_ms: sampling period floor; sources that spawn a process per reading
            are not polled every 50 ms.
    """

    name = ""
    role = "power"
    kind = "power"
    min_period_ms = 0.0

    def __init__(self, root: str = "/", runner: Optional[Runner] = None,
                 config: Optional[Dict[str, Any]] = None, path: Optional[str] = None):
        self.root = root
        self.config = dict(config or {})
        self.path = path  # PATH searched for commands (None: the process's)
        self._runner = runner

    def p(self, path: str) -> str:
        return sys_path(self.root, path)

    def has_command(self, name: str) -> bool:
        """On PATH; with an injected runner, in its ``commands`` (every name if it has none)."""
        if self._runner is not None:
            known = getattr(self._runner, "commands", None)
            return known is None or name in known
        return shutil.which(name, path=self.path) is not None

    def run(self, argv: List[str]) -> str:
        """stdout of a command: through the injected runner, else found on PATH and run."""
        if self._runner is not None:
            return self._runner(list(argv))
        exe = shutil.which(argv[0], path=self.path)
        if exe is None:
            raise FileNotFoundError("%s not found on PATH" % argv[0])
        return run_command([exe] + list(argv[1:]))

    def check(self) -> Optional[str]:
        """None when the source can be read here, else the reason it cannot."""
        return None

    def probe(self) -> Dict[str, Any]:
        """``{name, role, kind, available, reason}``; never raises."""
        try:
            reason = self.check()
        except Exception as exc:
            reason = describe(exc)
        return {"name": self.name, "role": self.role, "kind": self.kind,
                "available": reason is None, "reason": reason}

    def read(self) -> Any:
        """Power sources: watts ("power") or a counter reading ("energy")."""
        raise NotImplementedError

    def delta(self, first: Any, last: Any) -> float:
        """Energy sources: joules between two readings."""
        raise NotImplementedError

    def details(self) -> Dict[str, Any]:
        """Extra facts for the result's ``telemetry`` dict (rails, zones); may raise."""
        return {}

    def snapshot(self) -> Dict[str, Any]:
        """State sources: the state now (temperatures, clocks, counters)."""
        return {}

    def changes(self, before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
        """State sources: why the window counts as throttled (empty: it does not)."""
        return []

    def close(self) -> None:
        """Release handles (NVML); the default holds none."""


def counter_deltas(before: Dict[str, Any], after: Dict[str, Any], what: str) -> List[str]:
    """Reasons for cumulative counters that grew between two snapshots."""
    out = []
    for key in sorted(after):
        a, b = before.get(key), after.get(key)
        if isinstance(a, int) and isinstance(b, int) and b > a:
            out.append("%s %s +%d" % (what, key, b - a))
    return out


def dropped(before: Optional[float], after: Optional[float], what: str, frac: float = 0.10) -> List[str]:
    """A reason when a clock fell by more than ``frac`` during the window."""
    if before and after is not None and after < before * (1.0 - frac):
        return ["%s fell from %g to %g MHz" % (what, before, after)]
    return []
