"""The measurement protocol: load, first inference, warm-up, timed window, accuracy.

- Load time and the first inference are kept apart from warm-up: they are the cold-start
  figures users ask for (docs/measurement.md, trap 5; benchmark_app reports the first
  inference apart too).
- Warm-up and the timed window both stop only when an iteration count AND a duration are
  reached, as trtexec (>= 3 s and >= 10 iterations) and optimum-benchmark do.
- Inputs have the real input shape and are bound once (optimum-benchmark PR #188); a
  multi-input model (the spec's ``inputs``) gets every input, each in its own dtype, and its
  eval pass feeds ``x`` to the first input (``inputs.py`` says what the others get).
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
- With the eval set's ``task``, the eval pass returns every output (``Runtime.run_all``) and
  decodes it on the board (``tasks/``): the result's ``task`` carries the predictions and the
  eval pass's pre-processing, inference and post-processing times per image.
- With the spec's ``canary``, the canary is loaded after the warm-up and alternates with the
  job in blocks through the timed window (``canary.py``); its samples stay apart.
- Telemetry (``telemetry/session.py``): cooldown and the idle power baseline come before
  the load; the power sampler runs only around the timed loop, with a thermal/clock
  snapshot on each side; its failures are reasons in the result, never job errors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .accuracy import check_eval_set, load_eval_set, top1_accuracy
from .boardstate import BoardState
from .digest import sha256_file
from .earlystop import stop_record
from .errors import ArtifactIncompatible, MeasurementError, guard
from .canary import POWER_REASON, interleaved_loop, prepare_canary
from .loops import TARGET_TIME_SHARE, TARGET_TIME_SHARE_EVAL, Deadline, InferFn, target_loop, timed_loop, warmup_loop
from .inputs import EvalFeeds, check_eval_inputs, make_feeds, make_input
from .memory import read_memory
from .scenarios import close_scenario, open_scenario, prepare_scenario, scenario_record
from .runtimes.base import Runtime
from .spec import CanarySpec, JobSpec, MeasureSettings
from .stats import as_int_list, summarize, unstable_reason
from .tasks.evaluate import load_task_set, run_task
from .telemetry.session import JobTelemetry, clean

__all__ = ["Deadline", "InferFn", "make_input", "run_job", "target_loop", "timed_loop", "warmup_loop"]

# The wait for a quiet board takes at most this share of the time left (and measure.quiet.wait_s).
QUIET_TIME_SHARE = 0.25


def _check_model(path: str, weights: Optional[str], sha256: Optional[str], what: str) -> None:
    for name in (path, weights):
        if name is not None and not os.path.isfile(name):
            raise ArtifactIncompatible("%s file not found on the board: %s" % (what, name))
    if sha256 and sha256_file(path) != sha256.lower():
        raise ArtifactIncompatible("%s %s does not match its sha256 %s (copy damaged?)" % (what, path, sha256))


def _check_artifact(spec: JobSpec) -> None:
    _check_model(spec.artifact.path, spec.artifact.weights, spec.artifact.sha256, "artifact")
    if spec.canary is not None:
        art = spec.canary.artifact
        _check_model(art.path, art.weights, art.sha256, "canary artifact")
    if spec.eval is not None:
        if not os.path.isfile(spec.eval.path):
            raise ArtifactIncompatible("eval set not found on the board: %s" % spec.eval.path)
        check_eval_set(spec.eval.path, spec.input.shape, spec.eval.task.kind if spec.eval.task else None)
        if spec.inputs:
            check_eval_inputs(spec.eval.path, spec.inputs, spec.eval.max_samples)


@dataclass
class Warmup:
    """What came before the timed window: the first inference, the warm-up, the board's state."""

    first_ns: int
    iters: int
    ns: int
    board_state: Optional[Dict[str, Any]] = None
    noisy: Optional[str] = None


@dataclass
class Window:
    """One timed window: the job's samples and time, why it stopped, its start and end on the
    board's clock, and the interleaved canary's samples and time (empty without one)."""

    samples: List[int]
    ns: int
    stop: Dict[str, Any]
    marks: List[float]
    canary_samples: List[int] = field(default_factory=list)
    canary_ns: int = 0


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
    _check_artifact(spec)
    runtime.check_format(spec.artifact.format)
    tel = telemetry if telemetry is not None else JobTelemetry(spec.telemetry)
    cspec = spec.canary if canary is not None else None
    scen = open_scenario(spec, runtime)  # None: single-stream, timed by this module's own loops
    try:
        if tel.cooldown_target_c is not None:
            on_phase("cooldown")
        tel.before_job((deadline.end_ns - time.perf_counter_ns()) / 2e9)  # cooldown gets half the time left
        deadline.check("cooldown")
        fn, load_ns = _load(spec, runtime, deadline, on_phase)
        warm = _warm_up(fn, spec.measure, deadline, on_phase, board)
        prepare_scenario(scen, deadline, on_phase)  # its requests in flight (and the offline search)
        canary_fn = None  # type: Optional[InferFn]
        mem = None  # type: Optional[Dict[str, Any]]
        if canary is not None and cspec is not None:
            mem = read_memory()  # the job's peak: the canary's session must not count toward it
            on_phase("canary")
            cx = make_input(cspec.input.shape, cspec.input.dtype, spec.measure.seed)
            canary_fn = prepare_canary(canary, cspec, cx, spec.measure, deadline)
        on_phase("timed")
        share = TARGET_TIME_SHARE if spec.eval is None else TARGET_TIME_SHARE_EVAL
        tel.start_window()
        try:
            window = guard(lambda: Window(*scen.window(deadline)) if scen else _timed(
                fn, spec.measure, deadline, share, canary_fn, cspec), MeasurementError, "inference failed in phase timed")
        finally:
            tel.stop_window()
        if mem is None:
            mem = read_memory()  # peak of load + inference, before the eval set is read
        accuracy, eval_n, task = _accuracy(spec, runtime, deadline, on_phase)
        eff = runtime.effective()
        canary_eff = canary.effective() if canary_fn is not None and canary is not None else None
    finally:
        close_scenario(scen)
        runtime.close()
        if canary is not None:
            canary.close()
        tel.close()

    latency = summarize(window.samples, window.ns / 1e9)
    result = {
        "event": "result",
        "job_id": spec.job_id,
        "latency": latency,
        "samples_ns": as_int_list(window.samples),
        "stop": clean(window.stop),
        "window": {"start_unix": window.marks[0], "end_unix": window.marks[-1]},
        "board_state": clean(warm.board_state),
        "noisy": warm.noisy,
        "unstable": unstable_reason(latency, window.samples),
        "warmup": {"iters": warm.iters, "s": warm.ns / 1e9},
        "load_s": load_ns / 1e9,
        "first_infer_ms": warm.first_ns / 1e6,
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
    if task is not None:
        result["task"] = task
    result.update(tel.fields(scen.inferences if scen else len(window.samples)))
    scenario_record(spec, scen, result)
    if canary_eff is not None and canary is not None:
        result["canary"] = {"latency": summarize(window.canary_samples, window.canary_ns / 1e9),
                            "runtime": canary.name, "precision": canary_eff.get("precision")}
        if result.get("avg_power_w") is not None or result.get("energy_mj") is not None:
            result.update(energy_mj=None, avg_power_w=None, peak_power_w=None, power_reason=POWER_REASON)
    return result


def _load(spec: JobSpec, runtime: Runtime, deadline: Deadline, on_phase: Callable[[str], None]) -> Tuple[InferFn, int]:
    """Load the model and bind its input: the inference callable and the load time (ns)."""
    on_phase("load")
    t0 = time.perf_counter_ns()
    guard(lambda: runtime.load(spec.artifact.path, spec.artifact.weights), ArtifactIncompatible,
          "%s could not load %s" % (runtime.name, spec.artifact.path))
    load_ns = time.perf_counter_ns() - t0
    deadline.check("load")
    if spec.inputs:
        feeds = make_feeds(spec.inputs, spec.measure.seed)
        guard(lambda: runtime.prepare_feeds(feeds), ArtifactIncompatible, "%s rejected the inputs" % runtime.name)
    else:
        x = make_input(spec.input.shape, spec.input.dtype, spec.measure.seed)
        guard(lambda: runtime.prepare(x), ArtifactIncompatible, "%s rejected the input" % runtime.name)
    return runtime.infer_fn(), load_ns


def _warm_up(fn: InferFn, ms: MeasureSettings, deadline: Deadline, on_phase: Callable[[str], None],
             board: Optional[BoardState]) -> Warmup:
    """The first inference (timed on its own), the warm-up, and with ``measure.quiet`` the
    board's state: its first reading spans the warm-up; a busy board is waited for, then
    the job is warmed up again."""
    probe = None  # type: Optional[BoardState]
    since = None  # type: Optional[Dict[str, Any]]
    if ms.quiet is not None:
        probe = board if board is not None else BoardState()
        since = probe.begin()
    on_phase("warmup")
    w0 = time.perf_counter_ns()
    guard(fn, MeasurementError, "inference failed in phase warmup")
    first_ns = time.perf_counter_ns() - w0
    iters = guard(lambda: warmup_loop(fn, ms.warmup_iters, ms.warmup_s, deadline, w0),
                  MeasurementError, "inference failed in phase warmup")
    warm = Warmup(first_ns, iters, time.perf_counter_ns() - w0)
    if probe is None or ms.quiet is None:
        return warm
    on_phase("board_state")
    left_s = (deadline.end_ns - time.perf_counter_ns()) / 1e9
    warm.board_state, warm.noisy = probe.settle(ms.quiet, max(0.0, min(ms.quiet.wait_s, left_s * QUIET_TIME_SHARE)),
                                                since)
    deadline.check("board_state")
    if warm.board_state.get("checks", 1) > 1:  # it waited for the board: warm the caches again
        on_phase("warmup")
        guard(lambda: warmup_loop(fn, ms.warmup_iters, 0.0, deadline, time.perf_counter_ns(), 0),
              MeasurementError, "inference failed in phase warmup")
    return warm


def _timed(fn: InferFn, ms: MeasureSettings, deadline: Deadline, share: float, canary_fn: Optional[InferFn],
           cspec: Optional[CanarySpec]) -> Window:
    """The timed window by its loop: the canary interleaved with the job, the plain loop
    (``min_iters``/``min_s``), or the loop that waits for the target's interval."""
    marks: List[float] = []
    if canary_fn is not None and cspec is not None:
        samples, ns, reason, checks, canary_samples, canary_ns = interleaved_loop(
            fn, canary_fn, cspec.block_s, ms, deadline, share, marks)
        return Window(samples, ns, stop_record(reason, samples, ms.target, checks), marks, canary_samples, canary_ns)
    if ms.target is None:
        samples, ns = timed_loop(fn, ms.min_iters, ms.min_s, ms.max_iters, deadline, marks)
        mins_met = len(samples) >= ms.min_iters and ns >= int(ms.min_s * 1e9)
        return Window(samples, ns, stop_record("min_reached" if mins_met else "max_iters"), marks)
    samples, ns, reason, checks = target_loop(fn, ms.min_iters, ms.min_s, ms.max_iters, deadline, ms.target, share,
                                              marks)
    return Window(samples, ns, stop_record(reason, samples, ms.target, checks), marks)


def _accuracy(spec: JobSpec, runtime: Runtime, deadline: Deadline, on_phase: Callable[[str], None],
              ) -> Tuple[Optional[float], Optional[int], Optional[Dict[str, Any]]]:
    """Top-1 accuracy on the spec's eval set, by the same runtime instance, and with the eval
    set's task its predictions (``tasks/``); (None, None, None) without an eval set."""
    if spec.eval is None:
        return None, None, None
    on_phase("accuracy")
    check = lambda: deadline.check("accuracy")  # noqa: E731
    task = spec.eval.task
    # A multi-input model: x feeds the first input, the eval set's own arrays or the timed loop's data the others.
    multi = guard(lambda: EvalFeeds(runtime, spec.inputs, spec.eval.path, spec.measure.seed), ArtifactIncompatible,
                  "cannot read the eval set's inputs") if spec.inputs else None
    if task is not None:
        tx, ty = load_task_set(spec.eval.path, task, spec.eval.max_samples)
        return run_task(multi.run_all if multi else runtime.run_all, tx, ty, spec.input.shape[0], spec.input.dtype,
                        task, spec.input.shape, check)
    ex, ey = load_eval_set(spec.eval.path, spec.input.dtype, spec.eval.max_samples)
    accuracy, n = top1_accuracy(multi.run if multi else runtime.run, ex, ey, spec.input.shape[0], check)
    return accuracy, n, None
