"""A Jetson's power modes through its own tools: ``nvpmodel`` and ``jetson_clocks``.

- ``nvpmodel``: the mode now is ``nvpmodel -q`` (``NV Power Mode: MAXN`` then its id, parsed as
  telemetry does); ``nvpmodel -m ID`` sets one and, after the job, the saved one back. A mode
  change the board takes only after a reboot reads back unchanged: the job is refused.
- ``jetson_clocks``: ``jetson_clocks --store FILE`` saves the clocks (FILE in the work
  directory, beside the restore file), ``jetson_clocks`` locks them at the mode's maximum,
  ``jetson_clocks --restore FILE`` puts them back. What is read back: whether every CPU's
  and the GPU's minimum clock equals its maximum.

Both need root to change anything (``nvpmodel -q`` does not); the tools live in
/usr/sbin and /usr/bin.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from ..errors import PowerModeError
from ..telemetry.jetson import cpu_locked, find_gpu_devfreq, gpu_state, parse_nvpmodel
from .board import Mechanism

CLOCKS_FILE = "power-jetson_clocks.conf"


class Nvpmodel(Mechanism):
    """``power_mode.nvpmodel``: the nvpmodel mode id."""

    key = "nvpmodel"
    settle_s = 2.0  # CPUs brought on- or offline, EMC and GPU caps moved

    def check(self, setting: int) -> None:
        if self.board.which("nvpmodel") is None:
            raise PowerModeError("no nvpmodel on this board (not a Jetson? searched %s)" % self.board.search_path())

    def read(self) -> Dict[str, Any]:
        return parse_nvpmodel(self.board.run(["nvpmodel", "-q"]))

    def save(self) -> Dict[str, Any]:
        now = self.read()
        if now["id"] is None:
            raise PowerModeError("cannot tell the nvpmodel mode now: 'nvpmodel -q' printed no mode id")
        return now

    def apply(self, setting: int) -> None:
        self.board.run(["nvpmodel", "-m", str(int(setting))])

    def verify(self, setting: int, state: Dict[str, Any]) -> Optional[str]:
        if state.get("id") != setting:
            return ("nvpmodel reads mode %s after 'nvpmodel -m %d' (a mode that takes effect only after a reboot?)"
                    % (state.get("id"), setting))
        return None

    def restore(self, saved: Dict[str, Any]) -> None:
        mode = saved.get("id")
        if isinstance(mode, int) and not isinstance(mode, bool) and mode >= 0:
            self.board.run(["nvpmodel", "-m", str(mode)])


class JetsonClocks(Mechanism):
    """``power_mode.jetson_clocks``: true locks the clocks at the nvpmodel mode's maximum."""

    key = "jetson_clocks"
    settle_s = 1.0

    def _file(self) -> str:
        if not self.board.workdir:
            raise PowerModeError("jetson_clocks needs a work directory to store the clocks in")
        return os.path.join(self.board.workdir, CLOCKS_FILE)

    def check(self, setting: bool) -> None:
        if self.board.which("jetson_clocks") is None:
            raise PowerModeError("no jetson_clocks on this board (not a Jetson? searched %s)"
                                 % self.board.search_path())
        self._file()

    def save(self) -> Dict[str, Any]:
        path = self._file()
        self.board.run(["jetson_clocks", "--store", path])
        return {"stored": path}

    def apply(self, setting: bool) -> None:
        self.board.run(["jetson_clocks"])

    def read(self) -> Dict[str, Any]:
        dev, _ = find_gpu_devfreq(self.board.p("/sys/class/devfreq/*"))
        gpu = gpu_state(dev) if dev else None
        gpu_locked = None if gpu is None or gpu["min_mhz"] is None else gpu["min_mhz"] == gpu["max_mhz"]
        return {"cpu_locked": cpu_locked(self.board.root), "gpu_locked": gpu_locked}

    def verify(self, setting: bool, state: Dict[str, Any]) -> Optional[str]:
        if state.get("cpu_locked") is False:
            return "the CPU clocks are not locked after jetson_clocks (scaling_min_freq below scaling_max_freq)"
        return None

    def restore(self, saved: Dict[str, Any]) -> None:
        path = self._file()  # never a path read from the restore file
        if not os.path.isfile(path):
            raise PowerModeError("the clocks jetson_clocks stored are gone (%s)" % path)
        self.board.run(["jetson_clocks", "--restore", path])
        try:
            os.remove(path)
        except OSError:
            pass
