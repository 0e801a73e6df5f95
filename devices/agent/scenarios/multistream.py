"""``multi-stream``: MLPerf's Multi-Stream scenario. A query is ``samples_per_query`` samples
(MLPerf: 8), issued at once as that many parallel requests (each one input of the model's
batch) on a pool of ``inflight`` requests (default: the smaller of the query's samples and
the runtime's own number); the next query is issued when the last sample of the previous one
has finished. Each sample is a timed query: issue to last end. Throughput counts every sample,
batch included.

Why parallel requests rather than one batch of ``samples_per_query``: it needs no model
exported at that batch, and measures what a camera-array application does (one frame per
stream, all streams at once); with a model of batch B each request carries B inputs.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, List

from ..earlystop import stop_record
from .base import Scenario, WindowParts, min_reason

if TYPE_CHECKING:
    from ..loops import Deadline


class MultiStream(Scenario):
    name = "multi-stream"
    keys = ("inflight", "samples_per_query")

    def prepare(self, deadline: "Deadline") -> None:
        ms = self.ms
        self.open(ms.inflight or min(ms.samples_per_query, self.runtime.optimal_inflight()), deadline, ms.warmup_s)

    def window(self, deadline: "Deadline") -> WindowParts:
        assert self.pool is not None
        ms, pool = self.ms, self.pool
        clock, submit, drain = time.perf_counter_ns, pool.submit, pool.drain
        per_query = ms.samples_per_query
        cap = sys.maxsize if ms.max_iters is None else ms.max_iters
        min_ns, end_ns = int(ms.min_s * 1e9), deadline.end_ns
        samples: List[int] = []
        ends: List[int] = []

        def done(start_ns: int, end_ns_: int) -> None:
            ends.append(end_ns_)

        marks = [time.time()]
        start = t = clock()
        while len(samples) < cap and (len(samples) < ms.min_iters or t - start < min_ns):
            del ends[:]
            issued = clock()
            for _ in range(per_query):
                submit(done)
            drain()
            samples.append(max(ends) - issued)
            t = clock()
            if t > end_ns:
                deadline.fail("timed")
        ns = clock() - start
        marks.append(time.time())
        self.inferences = len(samples) * per_query * self.batch
        self.record["samples_per_query"] = per_query
        return samples, ns, stop_record(min_reason(len(samples), ns, ms)), marks
