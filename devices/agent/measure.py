"""The measurement protocol: load, first inference, warm-up, timed window, accuracy.

- Load time and the first inference are kept apart from warm-up: they are the cold-start
  figures users ask for (MEASUREMENT.md, trap 5; benchmark_app reports the first
  inference apart too).
- Warm-up and the timed window both stop only when an iteration count AND a duration are
  reached, as trtexec (>= 3 s and >= 10 iterations) and optimum-benchmark do.
- Inputs have the real input shape and are bound once (optimum-benchmark PR #188).
- The timed loop calls nothing but the clock and the runtime's own inference call, so a
  bare ``session.run`` loop is no faster.
- Telemetry (``telemetry/session.py``): cooldown and the idle power baseline come before
  the load; the power sampler runs only around the timed loop, with a thermal/clock
  snapshot on each side; its failures are reasons in the result, never job errors.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .accuracy import check_eval_set, load_eval_set, top1_accuracy
from .digest import sha256_file
from .errors import AgentError, ArtifactIncompatible, MeasurementError
from .memory import read_memory
from .runtimes.base import Runtime
from .spec import JobSpec
from .stats import as_int_list, summarize
from .telemetry.session import JobTelemetry

InferFn = Callable[[], Any]


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


def make_input(shape: Tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Random input of the real shape: standard normal for floats, small ints otherwise."""
    rng = np.random.RandomState(seed)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))
    high = 128 if dtype == "int8" else 256
    return np.ascontiguousarray(rng.randint(0, high, size=shape).astype(dtype))


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
    fn: InferFn, min_iters: int, min_s: float, max_iters: Optional[int], deadline: Deadline
) -> Tuple[List[int], int]:
    """Per-inference durations (ns) and the window's wall time (ns).

    Stops when n >= min_iters AND elapsed >= min_s, or at max_iters. Everything is bound to
    a local first; the bookkeeping happens outside the two clock reads.
    """
    clock = time.perf_counter_ns
    samples: List[int] = []
    append = samples.append
    min_ns = int(min_s * 1e9)
    cap = sys.maxsize if max_iters is None else max_iters
    end_ns = deadline.end_ns
    n = 0
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
    return samples, t1 - start


def _check_artifact(spec: JobSpec) -> None:
    for path in (spec.artifact_path, spec.artifact_weights):
        if path is not None and not os.path.isfile(path):
            raise ArtifactIncompatible("artifact file not found on the board: %s" % path)
    if spec.artifact_sha256 and sha256_file(spec.artifact_path) != spec.artifact_sha256.lower():
        raise ArtifactIncompatible(
            "artifact %s does not match its sha256 %s (copy damaged?)" % (spec.artifact_path, spec.artifact_sha256)
        )
    if spec.eval_path is not None:
        if not os.path.isfile(spec.eval_path):
            raise ArtifactIncompatible("eval set not found on the board: %s" % spec.eval_path)
        check_eval_set(spec.eval_path, spec.input_shape)


def _guard(step: Callable[[], Any], kind: type, what: str) -> Any:
    """Run ``step``; an unexpected exception becomes ``kind`` carrying the runtime's message."""
    try:
        return step()
    except AgentError:
        raise
    except Exception as exc:
        raise kind("%s: %s: %s" % (what, type(exc).__name__, exc)) from None


def run_job(
    spec: JobSpec,
    runtime: Runtime,
    runtime_info: Dict[str, Any],
    on_phase: Callable[[str], None],
    deadline: Deadline,
    rss_before_load_mb: Optional[float],
    telemetry: Optional[JobTelemetry] = None,
) -> Dict[str, Any]:
    """Measure one job and return its ``result`` event; raise AgentError on failure.

    ``runtime`` is constructed (options validated) but not loaded; it is closed here.
    ``telemetry`` (default: built from ``spec.telemetry`` on this board's /sys) cools the
    board down, takes the idle baseline before the load, and samples power only around
    the timed loop; its failures become reason strings in the result, never errors.
    """
    ms = spec.measure
    _check_artifact(spec)
    fmt = spec.artifact_format or "onnx"
    if fmt not in runtime.formats:
        raise ArtifactIncompatible("%s cannot read %s artifacts (it reads: %s)"
                                   % (runtime.name, fmt, ", ".join(sorted(runtime.formats))))
    tel = telemetry if telemetry is not None else JobTelemetry(spec.telemetry)
    try:
        if tel.cooldown_target_c is not None:
            on_phase("cooldown")
        tel.before_job((deadline.end_ns - time.perf_counter_ns()) / 2e9)  # cooldown gets half the time left
        deadline.check("cooldown")
        on_phase("load")
        t0 = time.perf_counter_ns()
        _guard(lambda: runtime.load(spec.artifact_path, spec.artifact_weights), ArtifactIncompatible,
               "%s could not load %s" % (runtime.name, spec.artifact_path))
        load_ns = time.perf_counter_ns() - t0
        deadline.check("load")

        x = make_input(spec.input_shape, spec.input_dtype, ms.seed)
        _guard(lambda: runtime.prepare(x), ArtifactIncompatible, "%s rejected the input" % runtime.name)
        fn = runtime.infer_fn()

        on_phase("warmup")
        w0 = time.perf_counter_ns()
        _guard(fn, MeasurementError, "inference failed in phase warmup")
        first_ns = time.perf_counter_ns() - w0
        warm_iters = _guard(lambda: warmup_loop(fn, ms.warmup_iters, ms.warmup_s, deadline, w0),
                            MeasurementError, "inference failed in phase warmup")
        warm_ns = time.perf_counter_ns() - w0

        on_phase("timed")
        tel.start_window()
        try:
            samples, window_ns = _guard(lambda: timed_loop(fn, ms.min_iters, ms.min_s, ms.max_iters, deadline),
                                        MeasurementError, "inference failed in phase timed")
        finally:
            tel.stop_window()
        mem = read_memory()  # peak of load + inference, before the eval set is read

        accuracy: Optional[float] = None
        eval_n: Optional[int] = None
        if spec.eval_path is not None:
            on_phase("accuracy")
            ex, ey = load_eval_set(spec.eval_path, spec.input_dtype, spec.eval_max_samples)
            accuracy, eval_n = top1_accuracy(runtime.run, ex, ey, spec.input_shape[0],
                                             lambda: deadline.check("accuracy"))
        eff = runtime.effective()
    finally:
        runtime.close()
        tel.close()

    result = {
        "event": "result",
        "job_id": spec.job_id,
        "latency": summarize(samples, window_ns / 1e9),
        "samples_ns": as_int_list(samples),
        "warmup": {"iters": warm_iters, "s": warm_ns / 1e9},
        "load_s": load_ns / 1e9,
        "first_infer_ms": first_ns / 1e6,
        "peak_rss_mb": mem["peak_mb"],
        "rss_before_load_mb": rss_before_load_mb,
        "memory_source": mem["source"],
        "accuracy": accuracy,
        "eval_n": eval_n,
        "threads": eff.get("threads"),
        "precision": eff.get("precision"),
        "runtime": {
            "name": runtime.name,
            "version": runtime_info.get("version"),
            "options": eff.get("options", {}),
        },
    }  # type: Dict[str, Any]
    result.update(tel.fields(len(samples)))
    return result
