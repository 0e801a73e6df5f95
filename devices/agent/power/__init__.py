"""Power modes: the board state a job is measured in (the spec's ``power_mode``).

One class per mechanism (``board.Mechanism``), registered in ``session.MECHANISMS`` in the
order they are applied and restored: ``jetson.Nvpmodel`` (``nvpmodel -m``),
``jetson.JetsonClocks`` (``jetson_clocks``), ``cpufreq.Cpufreq`` (sysfs governor and
limits). ``session.PowerSession`` applies a mode before the job and restores the board after
it; ``session.recover`` undoes a mode whose job died (the restore file). ``describe`` is what
the board's facts say about its power state now.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

from ..errors import PowerModeError
from .board import SYSFS_ROOT_ENV, Mechanism, PowerBoard
from .cpufreq import Cpufreq
from .jetson import JetsonClocks, Nvpmodel
from .session import MECHANISMS, RESTORE_FILE, PowerSession, recover, restore_active

__all__ = ["MECHANISMS", "RESTORE_FILE", "SYSFS_ROOT_ENV", "Mechanism", "PowerBoard", "PowerModeError",
           "PowerSession", "describe", "recover", "recover_in", "restore_active"]


def describe(root: str = "/", path: Optional[str] = None) -> Dict[str, Any]:
    """The board's power state now, per mechanism (its state, or the ``reason`` it has none),
    and whether the agent may change it (root). Never raises: facts describe a board."""
    board = PowerBoard(None, root, path)
    out = {"root": board.euid == 0}  # type: Dict[str, Any]
    for key, read in (("cpufreq", lambda: _cpufreq(board)), ("nvpmodel", lambda: _tool(board, Nvpmodel)),
                      ("jetson_clocks", lambda: _tool(board, JetsonClocks))):
        try:
            out[key] = read()
        except PowerModeError as exc:
            out[key] = {"reason": str(exc)}
        except Exception as exc:  # noqa: BLE001
            out[key] = {"reason": "%s: %s" % (type(exc).__name__, exc)}
    return out


def _cpufreq(board: PowerBoard) -> Dict[str, Any]:
    mech = Cpufreq(board)
    state = mech.read()
    d = mech.cpus()[0][1]
    state["available_governors"] = (board.read(os.path.join(d, "scaling_available_governors")) or "").split()
    state["cpuinfo_khz"] = [board.read_int(os.path.join(d, f)) for f in ("cpuinfo_min_freq", "cpuinfo_max_freq")]
    return state


def _tool(board: PowerBoard, cls: Any) -> Dict[str, Any]:
    exe = board.which(cls.key)
    if exe is None:
        raise PowerModeError("%s not found" % cls.key)
    return dict(cls(board).read(), path=exe) if cls is Nvpmodel else {"path": exe}


def recover_in(workdir: str, say: Callable[[str], None]) -> None:
    """``recover`` in ``workdir`` (the agent server's, at its start and after each job), saying what it did."""
    said = recover(PowerBoard.from_env(workdir))
    if said:
        say(said)
