"""Applying a job's power mode, restoring the board after it, and after a crash.

The order, for a mode that uses some of the mechanisms of ``MECHANISMS``:

1. **Check** every mechanism the mode uses (``Mechanism.check``): a refusal is a one-line
   ``PowerModeError`` (the job fails; nothing was changed).
2. **Save** the state each one will change, then write it to the **restore file**
   (``<workdir>/power-restore.json``, atomically) with its owner: this process's pid, start
   time and boot id. Only then:
3. **Apply** the mechanisms in table order (nvpmodel resets clocks, jetson_clocks locks them
   at that mode's maximum, cpufreq has the last word), wait ``settle_s`` (the mode's, else
   the longest of its mechanisms'), and **read back** what the board now says; a state that
   is not the one asked for is refused (and restored).
4. After the job, in a ``finally``, **restore** in the same order (nvpmodel first: it resets
   what the finer ones then put back) and remove the restore file.

A process that dies before step 4 (SIGKILL, the board's watchdog, a killed coordinator's
session) leaves the restore file. Every agent start (``measure``, and ``serve`` at start and
after each job) calls ``recover``: a restore file whose owner is gone is applied and removed;
one whose owner still runs is left alone (that job restores its own). While it is there, a
new power mode is refused rather than saved over it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from ..errors import PowerModeError
from ..powerspec import PowerMode, power_mode_to_json
from .board import Mechanism, PowerBoard
from .cpufreq import Cpufreq
from .jetson import JetsonClocks, Nvpmodel

# Every mechanism, in the order they are applied and restored.
MECHANISMS = (Nvpmodel, JetsonClocks, Cpufreq)
RESTORE_FILE = "power-restore.json"
_ACTIVE = []  # type: List[PowerSession]  # the session whose mode is applied now (for the watchdog)


def restore_path(board: PowerBoard) -> str:
    if not board.workdir:
        raise PowerModeError("power modes need the agent's work directory (serve --workdir, measure --workdir)")
    return os.path.join(board.workdir, RESTORE_FILE)


def _boot_id() -> Optional[str]:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> Tuple[Optional[str], Optional[int]]:
    """(state, start time in clock ticks) of a process from /proc; (None, None) where unknown."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None, None


def owner() -> Dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "start": _proc_stat(pid)[1], "boot_id": _boot_id(), "host": socket.gethostname()}


def alive(who: Dict[str, Any]) -> bool:
    """Whether the process that wrote a restore file still runs (same boot, pid and start time)."""
    pid = who.get("pid")
    if not isinstance(pid, int) or pid <= 0 or (who.get("boot_id") and who.get("boot_id") != _boot_id()):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    state, start = _proc_stat(pid)
    return state != "Z" and not (start is not None and who.get("start") is not None and start != who.get("start"))


def _create(path: str, data: Dict[str, Any]) -> None:
    """Write ``path`` whole and durably, only where it is not there yet (FileExistsError)."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # atomic, and never over another job's file
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _restore_saved(board: PowerBoard, saved: Dict[str, Any]) -> List[str]:
    """Put every saved mechanism's state back, in table order; the faults, one line each."""
    faults = []
    for cls in MECHANISMS:
        state = saved.get(cls.key)
        if isinstance(state, dict):
            try:
                cls(board).restore(state)
            except PowerModeError as exc:
                faults.append("%s: %s" % (cls.key, exc))
            except Exception as exc:  # noqa: BLE001 - a restore goes on with the next mechanism
                faults.append("%s: %s: %s" % (cls.key, type(exc).__name__, exc))
    return faults


def recover(board: PowerBoard) -> Optional[str]:
    """Apply and remove a restore file left by a process that is gone. Returns a line saying
    what was done (None: nothing to do, or its owner still runs); never raises."""
    try:
        path = restore_path(board)
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, PowerModeError):
        return None  # no restore file (the usual case), or no work directory
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("saved"), dict):
        try:
            os.replace(path, path + ".bad")
        except OSError as exc:
            return "power: the restore file %s is malformed and cannot be moved aside: %s" % (path, exc)
        return "power: the restore file %s is malformed; moved aside to %s.bad" % (path, path)
    who = data.get("owner") if isinstance(data.get("owner"), dict) else {}
    if alive(who):
        return None
    faults = _restore_saved(board, data["saved"])
    what = "power mode %r of job %s (pid %s)" % (data.get("mode"), data.get("job_id"), who.get("pid"))
    if faults:
        return "power: could not undo the %s, left by a process that is gone: %s; %s is kept" % (
            what, "; ".join(faults), path)
    try:
        os.remove(path)
    except OSError:
        pass
    return "power: restored the board's state from before the %s, left by a process that is gone" % what


class PowerSession:
    """One job's power mode: ``apply`` before the job, ``restore`` after it (idempotent)."""

    def __init__(self, mode: PowerMode, board: PowerBoard, job_id: Optional[str] = None):
        self.mode, self.board, self.job_id = mode, board, job_id
        self.used: List[Tuple[Mechanism, Any]] = [(cls(board), getattr(mode, cls.key)) for cls in MECHANISMS
                                                  if getattr(mode, cls.key) is not None
                                                  and getattr(mode, cls.key) is not False]  # nvpmodel 0 is a mode
        self.saved = {}  # type: Dict[str, Any]
        self.applied = {}  # type: Dict[str, Any]
        self.settle_s = 0.0
        self.armed = False  # the restore file is written: restore() has something to undo
        self.restore_fault = None  # type: Optional[str]

    def apply(self, time_left_s: Optional[float] = None) -> None:
        """Check, save, write the restore file, apply, settle, read back; PowerModeError (the
        board put back as it was) when the mode cannot be had."""
        path = restore_path(self.board)
        held = "the board's power state is held by another job, or could not be restored after one (%s is there)" % path
        if os.path.exists(path):
            raise PowerModeError(held)
        for mech, setting in self.used:
            mech.check(setting)
        self.saved = {mech.key: mech.save() for mech, _ in self.used}
        data = {"version": 1, "owner": owner(), "job_id": self.job_id, "mode": self.mode.name,
                "written": time.time(), "saved": self.saved}
        try:
            _create(path, data)
        except FileExistsError:
            raise PowerModeError(held) from None
        except OSError as exc:
            raise PowerModeError("cannot write the power restore file %s: %s" % (path, exc)) from None
        self.armed = True
        _ACTIVE.append(self)
        try:
            for mech, setting in self.used:
                mech.apply(setting)
            wanted = self.mode.settle_s
            self.settle_s = max(m.settle_s for m, _ in self.used) if wanted is None else wanted
            if time_left_s is not None:
                self.settle_s = max(0.0, min(self.settle_s, time_left_s / 4))
            time.sleep(self.settle_s)
            self.applied = {mech.key: mech.read() for mech, _ in self.used}
            for mech, setting in self.used:
                why = mech.verify(setting, self.applied[mech.key])
                if why:
                    raise PowerModeError("power mode %r did not take: %s" % (self.mode.name, why))
        except BaseException as exc:
            fault = self.restore()
            if fault and isinstance(exc, PowerModeError):
                raise PowerModeError("%s; restoring the board failed too: %s" % (exc, fault)) from None
            raise

    def restore(self) -> Optional[str]:
        """Put the saved state back and remove the restore file (kept when a step fails, for
        the next agent start); the fault, or None. Never raises."""
        if not self.armed:
            return self.restore_fault
        self.armed = False
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        faults = _restore_saved(self.board, self.saved)
        if faults:
            self.restore_fault = "; ".join(faults)
            return self.restore_fault
        try:
            os.remove(restore_path(self.board))
        except (OSError, PowerModeError):
            pass
        return None

    def record(self) -> Dict[str, Any]:
        """The result's ``power_mode``: the mode asked for, the state before it and read back
        after applying it, the settle wait, whether the board was restored."""
        requested = power_mode_to_json(self.mode)
        return {"name": requested.pop("name"), "requested": requested, "before": self.saved,
                "applied": self.applied, "settle_s": self.settle_s,
                "restored": not self.armed and self.restore_fault is None, "restore_error": self.restore_fault}


def restore_active() -> None:
    """Restore whatever mode is applied now (the watchdog, before it ends the process)."""
    for session in list(_ACTIVE):
        session.restore()
