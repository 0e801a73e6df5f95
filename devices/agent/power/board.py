"""Where a power mode acts: a sysfs root, the tools on a search path, the work directory.

``PowerBoard`` is what every mechanism (``Mechanism``) reads and writes through, so tests
point it at a fake sysfs tree and fake tools: ``root`` ("/" on a board; the environment's
``EDGE_HARNESS_SYSFS_ROOT`` for an agent process under test), ``path`` (where ``nvpmodel`` and
``jetson_clocks`` are looked for: PATH, then the sbin directories a non-root SSH session
lacks), ``workdir`` (the restore file and jetson_clocks' stored clocks), ``euid`` (whether
to say "needs root"). Every fault is a one-line ``PowerModeError``.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from typing import Any, Dict, List, Optional

from ..errors import PowerModeError
from ..telemetry.base import sys_path

SYSFS_ROOT_ENV = "EDGE_HARNESS_SYSFS_ROOT"
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")  # nvpmodel lives in /usr/sbin
COMMAND_TIMEOUT_S = 60.0  # nvpmodel -m may take seconds (it onlines CPUs, sets EMC)


class PowerBoard:
    """The board as power modes see it (see the module docstring)."""

    def __init__(self, workdir: Optional[str], root: str = "/", path: Optional[str] = None,
                 euid: Optional[int] = None):
        self.workdir = workdir
        self.root = root
        self.path = path
        self.euid = os.geteuid() if euid is None else euid

    @classmethod
    def from_env(cls, workdir: Optional[str]) -> "PowerBoard":
        return cls(workdir, os.environ.get(SYSFS_ROOT_ENV, "").strip() or "/")

    def p(self, path: str) -> str:
        """``path`` (absolute on the board) under ``root``."""
        return sys_path(self.root, path)

    def needs_root(self) -> str:
        """What to add to a permission fault: "" as root."""
        return "" if self.euid == 0 else " (power modes need root: the agent runs as uid %d)" % self.euid

    # -- sysfs ----------------------------------------------------------------------------

    def read(self, path: str) -> Optional[str]:
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as f:
                return f.read().replace("\x00", "").strip()
        except OSError:
            return None

    def read_int(self, path: str) -> Optional[int]:
        text = self.read(path)
        try:
            return int(text.split()[0]) if text else None
        except ValueError:
            return None

    def writable(self, path: str) -> bool:
        return os.access(path, os.W_OK)

    def write(self, path: str, value: Any) -> None:
        """Write one sysfs value; PowerModeError naming the file when the kernel or the
        permissions refuse it."""
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write("%s\n" % value)
        except PermissionError:
            raise PowerModeError("cannot write %s: permission denied%s" % (path, self.needs_root())) from None
        except OSError as exc:
            why = "the kernel refused it" if exc.errno == errno.EINVAL else (exc.strerror or str(exc))
            raise PowerModeError("cannot write %r to %s: %s" % (str(value), path, why)) from None

    # -- tools ----------------------------------------------------------------------------

    def search_path(self) -> str:
        if self.path is not None:
            return self.path
        parts = [p for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p]
        return os.pathsep.join(parts + [d for d in SBIN if d not in parts])

    def which(self, name: str) -> Optional[str]:
        return shutil.which(name, path=self.search_path())

    def run(self, argv: List[str], timeout: float = COMMAND_TIMEOUT_S) -> str:
        """stdout of a tool (no shell, no stdin: a tool that asks, such as nvpmodel before a
        reboot, reads end of input); PowerModeError on a missing tool, a fault or a timeout."""
        exe = self.which(argv[0])
        if exe is None:
            raise PowerModeError("%s not found (searched %s)" % (argv[0], self.search_path()))
        shown = " ".join(argv)
        try:
            proc = subprocess.run([exe] + list(argv[1:]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PowerModeError("%s did not finish in %g s" % (shown, timeout)) from None
        except OSError as exc:
            raise PowerModeError("cannot run %s: %s" % (shown, exc)) from None
        if proc.returncode != 0:
            said = " ".join((proc.stderr.strip() or proc.stdout.strip()).split())[:200]
            raise PowerModeError("%s exited with %d%s%s" % (shown, proc.returncode, ": " + said if said else "",
                                                            self.needs_root()))
        return proc.stdout


class Mechanism:
    """One way to set a board's power state. ``key`` is the ``PowerMode`` field it reads (a
    mode uses the mechanism when that field is set); ``settle_s`` the wait after applying it
    unless the mode says otherwise. ``check`` refuses before anything changes; ``save`` reads
    the state ``restore`` puts back (JSON: it goes to the restore file); ``read`` is the
    state now, ``verify`` why the state read back is not what ``apply`` asked for."""

    key = ""
    settle_s = 0.0

    def __init__(self, board: PowerBoard):
        self.board = board

    def check(self, setting: Any) -> None:
        """Raise PowerModeError when ``setting`` cannot be applied here."""

    def save(self) -> Dict[str, Any]:
        raise NotImplementedError

    def apply(self, setting: Any) -> None:
        raise NotImplementedError

    def read(self) -> Dict[str, Any]:
        raise NotImplementedError

    def verify(self, setting: Any, state: Dict[str, Any]) -> Optional[str]:
        return None

    def restore(self, saved: Dict[str, Any]) -> None:
        raise NotImplementedError
