"""The board canary interleaved with the job in its own process (spec key ``canary``).

A board's speed moves from run to run and within seconds (a VM's neighbours, clocks, heat),
and now and then a process lands in a slow mode for its whole window. The coordinator's gate
takes the shared part out by measuring every result relative to a fixed model, the canary
(``harness/gate/canary.py``). Canary windows next to the job, in their own processes, miss
what happens inside the job's process and between the windows; so with this key the timed
window alternates blocks of ``block_s`` of the job and of the canary, and each keeps its own
samples (benchmarks/canary_interleave.py: on the test VM the residual run-to-run spread of
MobileNetV2 int8 relative to the canary fell from 2.8-4.5% to 2.0-2.3%).

What it costs and changes, so that no figure of the job's is wrong:

- the window's stop rule (``min_iters``/``min_s``, ``max_iters``, ``target``) counts the
  job's own iterations and time only, checked after each job block; the canary adds about as
  much wall time again;
- the canary is loaded after the job's warm-up, and the job's peak memory is read before,
  so the canary's session does not count toward it;
- energy and power over the window would be the job's and the canary's mixed: they are not
  reported (``power_reason`` says so); use a suite without the interleaved canary for them.
"""

from __future__ import annotations

import sys
import time
from typing import Any, List, Optional, Tuple

from .earlystop import target_met
from .errors import ArtifactIncompatible, MeasurementError, guard
from .loops import TARGET_MAX_ITERS, Deadline, InferFn, timed_loop, warmup_loop
from .runtimes.base import Runtime
from .spec import CanarySpec, MeasureSettings

# The board canary's name in results: its jobs' model name in the plan and the store, which
# the gate and the report read to tell its rows apart (one definition, importable by all).
CANARY_NAME = "canary"
POWER_REASON = "not measured: the interleaved canary shares the timed window"


def prepare_canary(runtime: Runtime, spec: CanarySpec, x: Any, ms: MeasureSettings, deadline: Deadline) -> InferFn:
    """Load the canary, bind its input and warm it up as the job was; its inference callable."""
    art = spec.artifact
    runtime.check_format(art.format, "canary")
    guard(lambda: runtime.load(art.path, art.weights), ArtifactIncompatible,
           "canary: %s could not load %s" % (runtime.name, art.path))
    guard(lambda: runtime.prepare(x), ArtifactIncompatible, "canary: %s rejected the input" % runtime.name)
    fn = runtime.infer_fn()
    guard(lambda: warmup_loop(fn, ms.warmup_iters, ms.warmup_s, deadline, time.perf_counter_ns(), 0),
           MeasurementError, "canary: inference failed in phase warmup")
    return fn


def interleaved_loop(
    fn: InferFn, canary_fn: InferFn, block_s: float, ms: MeasureSettings, deadline: Deadline,
    time_share: float, marks: Optional[List[float]] = None,
) -> Tuple[List[int], int, str, int, List[int], int]:
    """Blocks of the job and of the canary, alternating, job first and last:
    (job samples ns, job window ns, stop reason, target checks, canary samples ns, canary ns).

    After each job block, in order: ``max_iters`` (with a target and none set,
    TARGET_MAX_ITERS) ends the window; once the job's own iterations and time meet the
    minimums it ends ("min_reached" without a target; with one, "target" when its interval is
    tight enough, else "timeout" once ``time_share`` of the time left at the start is spent).
    """
    target = ms.target
    cap = ms.max_iters if ms.max_iters is not None else (TARGET_MAX_ITERS if target is not None else sys.maxsize)
    min_ns = int(ms.min_s * 1e9)
    samples: List[int] = []
    canary: List[int] = []
    window_ns = canary_ns = checks = 0
    if marks is not None:
        marks.append(time.time())
    start = time.perf_counter_ns()
    budget_end = start + int(time_share * max(0, deadline.end_ns - start))
    while True:
        got, ns = timed_loop(fn, 1, block_s, cap - len(samples), deadline)
        samples += got
        window_ns += ns
        if len(samples) >= cap:
            reason = "max_iters"
            break
        if len(samples) >= ms.min_iters and window_ns >= min_ns:
            if target is None:
                reason = "min_reached"
                break
            checks += 1
            if target_met(samples, target.percentile, target.rel_error, target.confidence):
                reason = "target"
                break
            if time.perf_counter_ns() >= budget_end:
                reason = "timeout"
                break
        got, ns = timed_loop(canary_fn, 1, block_s, None, deadline)
        canary += got
        canary_ns += ns
    if marks is not None:
        marks.append(time.time())
    return samples, window_ns, reason, checks, canary, canary_ns
