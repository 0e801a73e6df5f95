"""``offline``: the most inferences per second the board sustains with ``inflight`` requests
always in flight (MLPerf's Offline scenario, benchmark_app's throughput mode).

The window keeps the pool full (a new request as soon as one ends) until ``min_iters``
requests and ``min_s`` are reached, then waits for the last. Throughput = requests x batch /
(first submit to last end); the samples are each request's latency under that load (from
when it began running to its end: time waiting for a free slot is not in it).

With ``p99_bound_ms``, the requests in flight are searched for first (``search.py``,
phase ``search``), with ``inflight`` as the ceiling (default ``MAX_INFLIGHT``), and the
timed window runs at the chosen count; the result's ``scenario.search`` lists every window.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np

from ..earlystop import stop_record
from ..stats import percentile
from .base import Scenario, WindowParts, closed_loop, min_reason
from .search import search

if TYPE_CHECKING:
    from ..loops import Deadline
    from ..measurespec import MeasureSettings

MAX_INFLIGHT = 64  # the search's ceiling when the suite names none
SEARCH_WARMUP_S = 0.2  # warm-up of each search window's pool (the job is warm already)


class Offline(Scenario):
    name = "offline"
    keys = ("inflight", "p99_bound_ms")

    @classmethod
    def check(cls, ms: "MeasureSettings") -> Optional[str]:
        if ms.p99_bound_ms is not None and ms.inflight is not None and ms.inflight < 2:
            return "inflight: with p99_bound_ms it is the search's ceiling and must be >= 2, got %d" % ms.inflight
        return None

    def plan(self) -> None:
        # The search tries several counts: the runtime sizes itself for an open count (one thread a request).
        self.runtime.plan_parallel(None if self.ms.p99_bound_ms is not None else self.ms.inflight)

    def prepare(self, deadline: "Deadline") -> None:
        bound = self.ms.p99_bound_ms
        if bound is None:
            Scenario.prepare(self, deadline)
            return
        chosen, met, windows = search(lambda n: self._probe(n, deadline), bound, self.ms.inflight or MAX_INFLIGHT)
        self.record["search"] = {"bound_ms": bound, "windows": windows, "count": len(windows), "chosen": chosen,
                                 "bound_met": met}
        self.open(chosen, deadline, self.ms.warmup_s)

    def _probe(self, n: int, deadline: "Deadline") -> Tuple[float, float]:
        """One search window at ``n`` in flight: (throughput, p99 ms)."""
        self.open(n, deadline, SEARCH_WARMUP_S)
        samples: List[int] = []
        assert self.pool is not None
        count, ns = closed_loop(self.pool, self.ms.min_iters, self.ms.min_s, self.ms.max_iters, deadline, "search",
                                samples)
        return count * self.batch / (ns / 1e9), percentile(np.sort(np.asarray(samples, np.float64)), 99) / 1e6

    def window(self, deadline: "Deadline") -> WindowParts:
        assert self.pool is not None
        samples: List[int] = []
        marks = [time.time()]
        n, ns = closed_loop(self.pool, self.ms.min_iters, self.ms.min_s, self.ms.max_iters, deadline, "timed", samples)
        marks.append(time.time())
        self.inferences = n * self.batch
        return samples, ns, stop_record(min_reason(n, ns, self.ms)), marks
