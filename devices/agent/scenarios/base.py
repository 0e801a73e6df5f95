"""What every scenario shares: the contract ``measure.run_job`` drives, the pool of requests
in flight (``runtimes/parallel.py``), and the closed loop that keeps it full.

Lifecycle (``measure.run_job``): ``plan()`` before the model loads (the runtime sizes its
threads or streams for requests in flight), ``prepare()`` after the job's warm-up (the pool
opened and warmed up as a whole; the offline search runs here), ``window()`` as the timed
window (telemetry around it), ``close()``. ``inferences`` counts what the window inferred,
batch included: throughput and energy per inference divide by it. ``record`` holds what the
result's ``scenario`` says besides name, batch, inflight and resolution.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..inputs import make_feeds, make_input

if TYPE_CHECKING:
    from ..loops import Deadline
    from ..measurespec import MeasureSettings
    from ..runtimes.base import Runtime
    from ..runtimes.parallel import Parallel
    from ..spec import JobSpec

WindowParts = Tuple[List[int], int, Dict[str, Any], List[float]]  # samples ns, window ns, stop, wall-clock marks


def _ignore(start_ns: int, end_ns: int) -> None:
    pass


def closed_loop(pool: "Parallel", min_iters: int, min_s: float, max_iters: Optional[int], deadline: "Deadline",
                phase: str, keep: Optional[List[int]] = None) -> Tuple[int, int]:
    """Keep ``pool`` full until ``min_iters`` requests AND ``min_s`` are reached (or
    ``max_iters``), then wait for the last: (requests, ns from the first submit to the last
    end). ``keep`` gets each request's latency (end - start, ns) in completion order."""
    if keep is None:
        done = _ignore
    else:
        append = keep.append

        def done(start_ns: int, end_ns: int) -> None:
            append(end_ns - start_ns)

    clock, submit = time.perf_counter_ns, pool.submit
    cap = sys.maxsize if max_iters is None else max_iters
    min_ns, end_ns = int(min_s * 1e9), deadline.end_ns
    n = 0
    start = t = clock()
    while n < cap and (n < min_iters or t - start < min_ns):
        submit(done)
        n += 1
        t = clock()
        if t > end_ns:
            deadline.fail(phase)
    pool.drain()
    return n, clock() - start


def min_reason(n: int, ns: int, ms: "MeasureSettings") -> str:
    """The stop reason of a window of ``n`` requests (or queries) over ``ns``."""
    return "min_reached" if n >= ms.min_iters and ns >= int(ms.min_s * 1e9) else "max_iters"


class Scenario(object):
    """One way of loading the board; subclass, set ``name`` and ``keys``, register it in
    ``scenarios/__init__.py``."""

    name = ""
    keys = ()  # type: Tuple[str, ...]  # the LATER_KEYS it reads (the others must keep their defaults)
    parallel = True  # False: measure.py's own single-stream loops time the window
    steady = True  # the window's latencies should be steady (pyperf's rules mark it unstable otherwise)

    def __init__(self, spec: "JobSpec", runtime: "Runtime"):
        self.spec, self.runtime, self.ms = spec, runtime, spec.measure
        self.batch = int(spec.input.shape[0])
        self.pool = None  # type: Optional[Parallel]
        self.inflight = None  # type: Optional[int]
        self.inferences = 0
        self.record = {}  # type: Dict[str, Any]

    @classmethod
    def check(cls, ms: "MeasureSettings") -> Optional[str]:
        """Why ``ms`` cannot run this scenario ("key: reason"), or None."""
        return None

    def plan(self) -> None:
        self.runtime.plan_parallel(self.ms.inflight)

    def prepare(self, deadline: "Deadline") -> None:
        """After the job's warm-up: the pool, warmed up with the job's warm-up settings."""
        self.open(self.ms.inflight or self.runtime.optimal_inflight(), deadline, self.ms.warmup_s)

    def open(self, n: int, deadline: "Deadline", warmup_s: float) -> None:
        """(Re)open the pool with ``n`` requests in flight and warm it up (every request at least twice)."""
        self.close()
        self.pool = self.runtime.parallel(n, self._clone)
        self.inflight = n
        self.record["pool"] = self.pool.describe()
        closed_loop(self.pool, max(self.ms.warmup_iters, 2 * n), warmup_s, None, deadline, "warmup")

    def _clone(self) -> "Runtime":
        """Another instance of the job's runtime, loaded and bound to the same (seeded) input."""
        rt, spec = self.runtime, self.spec
        other = type(rt)(rt.options, rt.threads)
        if rt.planned is not None:
            other.plan_parallel(rt.planned[0])
        other.load(spec.artifact.path, spec.artifact.weights)
        if spec.inputs:
            other.prepare_feeds(make_feeds(spec.inputs, self.ms.seed))
        else:
            other.prepare(make_input(spec.input.shape, spec.input.dtype, self.ms.seed))
        return other

    def window(self, deadline: "Deadline") -> WindowParts:
        raise NotImplementedError

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.close()
