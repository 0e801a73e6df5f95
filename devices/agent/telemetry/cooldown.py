"""Cooldown before a job: a board still hot from the last job measures its cooling.

Wait until the hottest zone is under ``max_temp_c``, or within ``delta_c`` of the board's
idle temperature ``idle_temp_c`` (whichever is given; either suffices), polling once a
second, for at most ``max_wait_s``. The wait and whether it ran out are recorded with
the result (docs/measurement.md, trap 3); running out is not an error.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

POLL_S = 1.0


def target_c(max_temp_c: Optional[float], idle_temp_c: Optional[float], delta_c: Optional[float]) -> Optional[float]:
    """The temperature to get under: the higher (easier) of the two rules given, or None."""
    rules = [t for t in (max_temp_c, None if idle_temp_c is None or delta_c is None else idle_temp_c + delta_c)
             if t is not None]
    return max(rules) if rules else None


def cool_down(read_temp: Callable[[], Optional[float]], target: Optional[float], max_wait_s: float,
              sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
              poll_s: float = POLL_S) -> Dict[str, Any]:
    """Wait until ``read_temp() < target``; ``{cooldown_s, timed_out, start_c, end_c, target_c}``.

    No target, or no readable temperature: returns at once (``reason`` says why).
    """
    out: Dict[str, Any] = {"cooldown_s": 0.0, "timed_out": False, "target_c": target, "start_c": None,
                           "end_c": None}
    if target is None:
        out["reason"] = "no cooldown configured"
        return out
    t0 = clock()
    temp = read_temp()
    out["start_c"] = out["end_c"] = temp
    if temp is None:
        out["reason"] = "no readable temperature"
        return out
    while temp is not None and temp >= target:
        left = max_wait_s - (clock() - t0)
        if left <= 0:
            out["timed_out"] = True
            break
        sleep(min(poll_s, left))
        temp = read_temp()
        out["end_c"] = temp
    out["cooldown_s"] = round(clock() - t0, 3)
    return out
