"""``paced``: requests arrive at a fixed rate, ``rate_hz``, whether or not the board is done
with the previous ones (MLPerf's Server scenario with ``arrivals: poisson``: exponential gaps,
seeded by ``measure.seed``; ``uniform``: one every 1 / rate_hz).

The window schedules max(``min_iters``, ``rate_hz`` x ``min_s``) arrivals (at most
``max_iters``). A dispatcher thread sleeps until each arrival and submits it to the pool of
``inflight`` requests (default: the runtime's own number); when every request is busy the
submit waits, so the request starts late. **Latency is measured from the scheduled arrival**,
so time spent queueing counts (a request that waited 40 ms and ran 10 ms took 50 ms).

Whether the board kept up, by a stated rule: a request is *late* when it began running
more than one mean gap (1 / rate_hz) after its arrival; once the dispatcher is ``BACKLOG_S``
(or ``min_s``, the larger) behind the schedule the board has clearly not kept up and the
window stops issuing (the arrivals left count as late). ``kept_up`` is true when at most
``MAX_LATE`` (5 %) of the arrivals were late. The result also carries the achieved rate
(completed requests over the window, first arrival to last end) next to the asked one.
Energy per inference is the window's energy over its inferences at that rate, idle gaps
between arrivals included: what the rate costs.
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import TYPE_CHECKING, List, Optional

import numpy as np

from ..earlystop import stop_record
from .base import Scenario, WindowParts, min_reason

if TYPE_CHECKING:
    from ..loops import Deadline
    from ..measurespec import MeasureSettings

MAX_LATE = 0.05
BACKLOG_S = 1.0
ARRIVALS = ("uniform", "poisson")


def arrival_offsets(n: int, rate_hz: float, arrivals: str, seed: int) -> List[int]:
    """When each of ``n`` requests arrives, in ns after the first."""
    gap = 1e9 / rate_hz
    if arrivals == "poisson":
        gaps = np.random.RandomState(seed).exponential(gap, n)
        offsets = np.concatenate(([0.0], np.cumsum(gaps[:-1])))
    else:
        offsets = np.arange(n, dtype=np.float64) * gap
    return [int(v) for v in offsets]


class Paced(Scenario):
    name = "paced"
    keys = ("inflight", "rate_hz", "arrivals")
    steady = False  # latencies follow the arrivals (poisson bursts, a backlog): kept_up judges the window

    @classmethod
    def check(cls, ms: "MeasureSettings") -> Optional[str]:
        if ms.rate_hz is None:
            return "rate_hz: scenario paced needs an arrival rate (requests per second)"
        return None

    def window(self, deadline: "Deadline") -> WindowParts:
        assert self.pool is not None and self.ms.rate_hz is not None
        ms, rate = self.ms, self.ms.rate_hz
        n = max(ms.min_iters, int(math.ceil(rate * ms.min_s)))
        n = n if ms.max_iters is None else min(n, ms.max_iters)
        offsets = arrival_offsets(n, rate, ms.arrivals, ms.seed)
        gap_ns = 1e9 / rate
        behind_ns = max(BACKLOG_S, ms.min_s) * 1e9
        clock, submit, end_ns = time.perf_counter_ns, self.pool.submit, deadline.end_ns
        samples: List[int] = []
        ends: List[int] = []
        late: List[int] = []

        def done(due: int, start_ns: int, stop_ns: int) -> None:
            samples.append(stop_ns - due)
            ends.append(stop_ns)
            if start_ns - due > gap_ns:
                late.append(due)

        marks = [time.time()]
        start = clock()
        issued = 0
        for offset in offsets:
            due = start + offset
            now = clock()
            if now < due:
                time.sleep((due - now) / 1e9)
            elif now - due > behind_ns:
                break  # far behind the schedule: it did not keep up; the rest count as late
            if now > end_ns:
                deadline.fail("timed")
            submit(partial(done, due))
            issued += 1
        self.pool.drain()
        ns = (max(ends) if ends else clock()) - start
        marks.append(time.time())
        self.inferences = len(samples) * self.batch
        late_fraction = (len(late) + n - issued) / n
        self.record.update(rate_hz=rate, arrivals=ms.arrivals, scheduled=n, issued=issued,
                           achieved_hz=len(samples) / (ns / 1e9) if ns > 0 else None,
                           late_fraction=late_fraction, kept_up=late_fraction <= MAX_LATE)
        return samples, ns, stop_record("behind" if issued < n else min_reason(issued, ns, ms)), marks
