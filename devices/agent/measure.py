"""The measurement protocol: load, first inference, warm-up, timed window, accuracy.

- Load time and the first inference are kept apart from warm-up: they are the cold-start
  figures users ask for (MEASUREMENT.md, trap 5; benchmark_app reports the first
  inference apart too).
- Warm-up and the timed window both stop only when an iteration count AND a duration are
  reached, as trtexec (>= 3 s and >= 10 iterations) and optimum-benchmark do.
- Inputs have the real input shape and are bound once (optimum-benchmark PR #188).
- The timed loop calls nothing but the clock and the runtime's own inference call, so a
  bare ``session.run`` loop is no faster.
- With ``measure.target`` the window also waits until the percentile is known
  (``earlystop.py``): ``target_loop`` checks the interval every so often between two
  iterations, outside their clock reads, and the check's time is taken out of the window.
  Without a target, ``timed_loop`` is the same fast loop as before.
- Board state (``boardstate.py``, ``measure.quiet``): its first reading spans the warm-up
  (this process's own CPU time is taken out), so a quiet board costs no extra time; a busy
  one is re-read while the wait allows, then warmed up again; the result carries the state
  and the ``noisy`` mark.
- The window's start and end on the board's wall clock (``time.time()`` read just outside
  the first and last timed iteration) go to the result's ``window``, so windows of other
  coordinators on the same board can be compared.
- With the spec's ``canary``, the canary is loaded after the warm-up and alternates with the
  job in blocks through the timed window (``interleave.py``); its samples stay apart.
- Telemetry (``telemetry/session.py``): cooldown and the idle power baseline come before
  the load; the power sampler runs only around the timed loop, with a thermal/clock
  snapshot on each side; its failures are reasons in the result, never job errors.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .accuracy import check_eval_set, load_eval_set, top1_accuracy
from .boardstate import BoardState
from .digest import sha256_file
from .earlystop import stop_record
from .errors import ArtifactIncompatible, MeasurementError, guard
from .interleave import POWER_REASON, interleaved_loop, prepare_canary
from .loops import TARGET_TIME_SHARE, TARGET_TIME_SHARE_EVAL, Deadline, InferFn, target_loop, timed_loop, warmup_loop
from .memory import read_memory
from .runtimes.base import Runtime
from .spec import JobSpec
from .stats import as_int_list, summarize, unstable_reason
from .telemetry.session import JobTelemetry, clean

__all__ = ["Deadline", "InferFn", "make_input", "run_job", "target_loop", "timed_loop", "warmup_loop"]

# The wait for a quiet board takes at most this share of the time left (and measure.quiet.wait_s).
QUIET_TIME_SHARE = 0.25


def make_input(shape: Tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Random input of the real shape: standard normal for floats, small ints otherwise."""
    rng = np.random.RandomState(seed)
    if np.issubdtype(np.dtype(dtype), np.floating):
        return np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))
    high = 128 if dtype == "int8" else 256
    return np.ascontiguousarray(rng.randint(0, high, size=shape).astype(dtype))


def _check_model(path: str, weights: Optional[str], sha256: Optional[str], what: str) -> None:
    for name in (path, weights):
        if name is not None and not os.path.isfile(name):
            raise ArtifactIncompatible("%s file not found on the board: %s" % (what, name))
    if sha256 and sha256_file(path) != sha256.lower():
        raise ArtifactIncompatible("%s %s does not match its sha256 %s (copy damaged?)" % (what, path, sha256))


def _check_artifact(spec: JobSpec) -> None:
    _check_model(spec.artifact_path, spec.artifact_weights, spec.artifact_sha256, "artifact")
    if spec.canary is not None:
        art = spec.canary.artifact
        _check_model(art.path, art.weights, art.sha256, "canary artifact")
    if spec.eval_path is not None:
        if not os.path.isfile(spec.eval_path):
            raise ArtifactIncompatible("eval set not found on the board: %s" % spec.eval_path)
        check_eval_set(spec.eval_path, spec.input_shape)


def run_job(
    spec: JobSpec,
    runtime: Runtime,
    runtime_info: Dict[str, Any],
    on_phase: Callable[[str], None],
    deadline: Deadline,
    rss_before_load_mb: Optional[float],
    telemetry: Optional[JobTelemetry] = None,
    board: Optional[BoardState] = None,
    canary: Optional[Runtime] = None,
) -> Dict[str, Any]:
    """Measure one job and return its ``result`` event; raise AgentError on failure.

    ``runtime`` is constructed (options validated) but not loaded; it is closed here.
    ``telemetry`` (default: built from ``spec.telemetry`` on this board's /sys) cools the
    board down, takes the idle baseline before the load, and samples power only around
    the timed loop; its failures become reason strings in the result, never errors.
    ``board`` (default: this board's /proc) reads the board state before the window when
    ``measure.quiet`` is set. ``canary`` (constructed, not loaded; closed here) is the
    runtime of the spec's ``canary``, interleaved with the job through the timed window.
    """
    ms = spec.measure
    _check_artifact(spec)
    runtime.check_format(spec.artifact_format)
    tel = telemetry if telemetry is not None else JobTelemetry(spec.telemetry)
    try:
        if tel.cooldown_target_c is not None:
            on_phase("cooldown")
        tel.before_job((deadline.end_ns - time.perf_counter_ns()) / 2e9)  # cooldown gets half the time left
        deadline.check("cooldown")
        on_phase("load")
        t0 = time.perf_counter_ns()
        guard(lambda: runtime.load(spec.artifact_path, spec.artifact_weights), ArtifactIncompatible,
              "%s could not load %s" % (runtime.name, spec.artifact_path))
        load_ns = time.perf_counter_ns() - t0
        deadline.check("load")

        x = make_input(spec.input_shape, spec.input_dtype, ms.seed)
        guard(lambda: runtime.prepare(x), ArtifactIncompatible, "%s rejected the input" % runtime.name)
        fn = runtime.infer_fn()

        probe = None  # type: Optional[BoardState]
        since = None  # type: Optional[Dict[str, Any]]
        if ms.quiet is not None:
            probe = board if board is not None else BoardState()
            since = probe.begin()  # the first reading spans the warm-up: a quiet board costs no extra time

        on_phase("warmup")
        w0 = time.perf_counter_ns()
        guard(fn, MeasurementError, "inference failed in phase warmup")
        first_ns = time.perf_counter_ns() - w0
        warm_iters = guard(lambda: warmup_loop(fn, ms.warmup_iters, ms.warmup_s, deadline, w0),
                           MeasurementError, "inference failed in phase warmup")
        warm_ns = time.perf_counter_ns() - w0

        board_state = None  # type: Optional[Dict[str, Any]]
        noisy = None  # type: Optional[str]
        if probe is not None and ms.quiet is not None:
            on_phase("board_state")
            left_s = (deadline.end_ns - time.perf_counter_ns()) / 1e9
            board_state, noisy = probe.settle(ms.quiet, max(0.0, min(ms.quiet.wait_s, left_s * QUIET_TIME_SHARE)),
                                              since)
            deadline.check("board_state")
            if board_state.get("checks", 1) > 1:  # it waited for the board: warm the caches again
                on_phase("warmup")
                guard(lambda: warmup_loop(fn, ms.warmup_iters, 0.0, deadline, time.perf_counter_ns(), 0),
                      MeasurementError, "inference failed in phase warmup")

        canary_fn = None  # type: Optional[InferFn]
        mem = None  # type: Optional[Dict[str, Any]]
        cspec = spec.canary if canary is not None else None
        if canary is not None and cspec is not None:
            mem = read_memory()  # the job's peak: the canary's session must not count toward it
            on_phase("canary")
            cx = make_input(cspec.input_shape, cspec.input_dtype, ms.seed)
            canary_fn = prepare_canary(canary, cspec, cx, ms, deadline)

        on_phase("timed")
        marks: List[float] = []
        target = ms.target
        share = TARGET_TIME_SHARE if spec.eval_path is None else TARGET_TIME_SHARE_EVAL
        canary_samples = []  # type: List[int]
        canary_ns = 0
        tel.start_window()
        try:
            if canary_fn is not None and cspec is not None:
                block_s = cspec.block_s
                samples, window_ns, reason, checks, canary_samples, canary_ns = guard(
                    lambda: interleaved_loop(fn, canary_fn, block_s, ms, deadline, share, marks),
                    MeasurementError, "inference failed in phase timed")
                stop = stop_record(reason, samples, target, checks)
            elif target is None:
                samples, window_ns = guard(
                    lambda: timed_loop(fn, ms.min_iters, ms.min_s, ms.max_iters, deadline, marks),
                    MeasurementError, "inference failed in phase timed")
                mins_met = len(samples) >= ms.min_iters and window_ns >= int(ms.min_s * 1e9)
                stop = stop_record("min_reached" if mins_met else "max_iters")
            else:
                samples, window_ns, reason, checks = guard(
                    lambda: target_loop(fn, ms.min_iters, ms.min_s, ms.max_iters, deadline, target, share, marks),
                    MeasurementError, "inference failed in phase timed")
                stop = stop_record(reason, samples, target, checks)
        finally:
            tel.stop_window()
        if mem is None:
            mem = read_memory()  # peak of load + inference, before the eval set is read

        accuracy: Optional[float] = None
        eval_n: Optional[int] = None
        if spec.eval_path is not None:
            on_phase("accuracy")
            ex, ey = load_eval_set(spec.eval_path, spec.input_dtype, spec.eval_max_samples)
            accuracy, eval_n = top1_accuracy(runtime.run, ex, ey, spec.input_shape[0],
                                             lambda: deadline.check("accuracy"))
        eff = runtime.effective()
        canary_precision = canary.effective().get("precision") if canary_fn is not None and canary is not None else None
    finally:
        runtime.close()
        if canary is not None:
            canary.close()
        tel.close()

    latency = summarize(samples, window_ns / 1e9)
    result = {
        "event": "result",
        "job_id": spec.job_id,
        "latency": latency,
        "samples_ns": as_int_list(samples),
        "stop": clean(stop),
        "window": {"start_unix": marks[0], "end_unix": marks[-1]},
        "board_state": clean(board_state),
        "noisy": noisy,
        "unstable": unstable_reason(latency, samples),
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
    if canary_fn is not None:
        result["canary"] = {"latency": summarize(canary_samples, canary_ns / 1e9), "runtime": canary.name,
                            "precision": canary_precision}
        if result.get("avg_power_w") is not None or result.get("energy_mj") is not None:
            result.update(energy_mj=None, avg_power_w=None, peak_power_w=None, power_reason=POWER_REASON)
    return result
