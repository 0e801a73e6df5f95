"""The warm-up and timed loops, and the job's deadline they honour (``measure.run_job``).

Everything a loop needs is bound to a local first, and the bookkeeping happens outside the
two clock reads that bracket each inference: a bare ``session.run`` loop is no faster
(benchmarks/overhead.py). ``timed_loop`` is the window without a target; ``target_loop``
adds the early-stopping check of ``earlystop.py``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, List, Optional, Tuple

from .earlystop import check_every, target_met
from .errors import MeasurementError
from .spec import TargetSettings

InferFn = Callable[[], Any]

# With a target and no max_iters, the window may use this share of the job's time left when
# it starts (the rest is for the accuracy phase, when there is one, and the result), then
# stops with reason "timeout" instead of failing the job; and at most TARGET_MAX_ITERS
# iterations (reason "max_iters"), so a target that never converges cannot fill the board's
# memory with samples (a million samples already pin any percentile far below 2%, unless
# the distribution itself keeps moving).
TARGET_TIME_SHARE = 0.8
TARGET_TIME_SHARE_EVAL = 0.5
TARGET_MAX_ITERS = 1000000


class Deadline:
    """The job's time limit, counted from agent start; loops compare ``end_ns`` inline."""

    def __init__(self, timeout_s: float, start_ns: Optional[int] = None):
        self.timeout_s = timeout_s
        self.start_ns = time.perf_counter_ns() if start_ns is None else start_ns
        self.end_ns = self.start_ns + int(timeout_s * 1e9)

    def fail(self, phase: str) -> None:
        raise MeasurementError("timed out after %g s in phase %s" % (self.timeout_s, phase))

    def check(self, phase: str) -> None:
        if time.perf_counter_ns() > self.end_ns:
            self.fail(phase)


def warmup_loop(fn: InferFn, min_iters: int, min_s: float, deadline: Deadline, start_ns: int, done: int = 1) -> int:
    """Run ``fn`` until both ``min_iters`` (counting ``done`` already run) and ``min_s``
    since ``start_ns`` are reached; return the total iteration count."""
    clock = time.perf_counter_ns
    min_ns = int(min_s * 1e9)
    end_ns = deadline.end_ns
    n = done
    t = clock()
    while n < min_iters or t - start_ns < min_ns:
        fn()
        n += 1
        t = clock()
        if t > end_ns:
            deadline.fail("warmup")
    return n


def timed_loop(
    fn: InferFn, min_iters: int, min_s: float, max_iters: Optional[int], deadline: Deadline,
    marks: Optional[List[float]] = None,
) -> Tuple[List[int], int]:
    """Per-inference durations (ns) and the window's wall time (ns).

    Stops when n >= min_iters AND elapsed >= min_s, or at max_iters. Everything is bound to
    a local first; the bookkeeping happens outside the two clock reads. ``marks``, when
    given, gets ``time.time()`` just before the first and just after the last iteration.
    """
    clock = time.perf_counter_ns
    samples: List[int] = []
    append = samples.append
    min_ns = int(min_s * 1e9)
    cap = sys.maxsize if max_iters is None else max_iters
    end_ns = deadline.end_ns
    n = 0
    if marks is not None:
        marks.append(time.time())
    start = clock()
    t1 = start
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        append(t1 - t0)
        n += 1
        if n >= cap or (n >= min_iters and t1 - start >= min_ns):
            break
        if t1 > end_ns:
            deadline.fail("timed")
    if marks is not None:
        marks.append(time.time())
    return samples, t1 - start


def target_loop(
    fn: InferFn, min_iters: int, min_s: float, max_iters: Optional[int], deadline: Deadline,
    target: TargetSettings, time_share: float = TARGET_TIME_SHARE, marks: Optional[List[float]] = None,
) -> Tuple[List[int], int, str, int]:
    """The timed window with a target: (samples ns, window ns, stop reason, checks).

    In order, after each iteration: ``max_iters`` (or TARGET_MAX_ITERS when unset) ends the
    window ("max_iters"); the job's deadline fails it while the minimums are not met (as
    without a target); once n >= min_iters AND elapsed >= min_s, the window ends when its
    time budget (``time_share`` of the job's time left at the start) is spent ("timeout",
    or "target" when a last check finds it met), else every ``check_every(n)`` iterations the interval is checked and the window ends
    when the target is met ("target"). The check runs between two iterations, outside their
    clock reads, and its time is subtracted from the window (it is in no sample either).
    """
    clock = time.perf_counter_ns
    samples: List[int] = []
    append = samples.append
    min_ns = int(min_s * 1e9)
    cap = TARGET_MAX_ITERS if max_iters is None else max_iters
    end_ns = deadline.end_ns
    q, rel, conf = target.percentile, target.rel_error, target.confidence
    n = 0
    checks = 0
    paused = 0
    next_check = 0
    if marks is not None:
        marks.append(time.time())
    start = clock()
    budget_end = start + int(time_share * max(0, end_ns - start))
    t1 = start
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        append(t1 - t0)
        n += 1
        if n >= cap:
            reason = "max_iters"
            break
        if t1 > end_ns:
            deadline.fail("timed")
        if n >= min_iters and t1 - start - paused >= min_ns:
            if t1 >= budget_end:  # one last look: met by now is met, whatever the schedule
                checks += 1
                reason = "target" if target_met(samples, q, rel, conf) else "timeout"
                break
            if n >= next_check:
                c0 = clock()
                met = target_met(samples, q, rel, conf)
                checks += 1
                if met:  # this check came after t1: nothing to take out of the window
                    reason = "target"
                    break
                next_check = n + check_every(n)
                paused += clock() - c0
    if marks is not None:
        marks.append(time.time())
    return samples, t1 - start - paused, reason, checks
