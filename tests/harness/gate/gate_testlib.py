"""Runs with known latency distributions, written through the real store API."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from harness.coordinator.repeats import as_repeat, combine
from harness.records import Job, JobResult, JobSettings
from harness.store import Store

CONFIGS = [("digits", "fp32", "orin", "onnxruntime"), ("digits", "int8", "orin", "onnxruntime"),
           ("mnv2", "fp32", "pi", "onnxruntime"), ("mnv2", "int8", "pi", "openvino")]


def latencies(rng: np.random.Generator, median_ms: float, n: int = 2000, run_shift: float = 0.0) -> np.ndarray:
    """AR(1)-correlated log-normal latencies, as a real loop gives: neighbours resemble each other."""
    noise = np.empty(n)
    noise[0] = rng.normal()
    for i in range(1, n):
        noise[i] = 0.8 * noise[i - 1] + 0.6 * rng.normal()
    return median_ms * np.exp(run_shift + 0.03 * noise)


_CLOCK = itertools.count(1_000_000)  # one shared wall clock: a window takes one tick


def add_run(store: Store, rng: np.random.Generator, tag: str | None = "nightly", slow: dict | None = None,
            missing: tuple = (), accuracy: dict | None = None, energy: dict | None = None, run_noise: float = 0.005,
            gate: dict | None = None, repeats: int = 1, process_noise: float = 0.0, unstable: dict | None = None,
            canary: dict | None = None, board_noise: float = 0.0, deaf: tuple = (), cv: dict | None = None,
            interleaved: bool = False, noisy: dict | None = None, finish: bool = True,
            degraded: dict | None = None) -> str:
    """One run over CONFIGS; ``slow`` maps a config to a latency factor. ``repeats`` windows per
    job, each in its "own process" (a log shift of sd ``process_noise``), folded as the sweep does;
    ``canary`` maps a board to its canary's latency factor (canary jobs first, between every two
    jobs, and last on each board, as ``canary: {every: 1}`` places them); ``board_noise`` is the
    sd of this run's board speed (a log shift every window of the run feels, canary included,
    but the configs in ``deaf``); ``unstable`` maps a config to its mark, ``cv`` to its CV;
    ``interleaved``: each config's window carries its own canary's percentiles, which share the
    window's board and process shifts (``canary: {interleaved: true}``); ``noisy`` maps a config to
    its board's noisy mark; ``finish=False`` leaves the run as a crashed sweep leaves it;
    ``degraded`` maps a config to its fidelity mark (set on the folded result, as the sweep does)."""
    config: dict[str, Any] = {"suite": {"name": "s", "gate": gate}, "devices": []}
    run = store.create_run(suite="s", config=config, tag=tag)
    jobs = [Job(*c) for c in CONFIGS]
    boards = list(canary or {})
    gaps = {b: max(0, sum(c[2] == b for c in CONFIGS) - 1) for b in boards}
    canaries = {(b, when): Job("canary", "fp32", b, "onnxruntime", JobSettings(repeats=n, canary=when))
                for b in boards for when, n in (("first", 1), ("between", gaps[b]), ("last", 1)) if n}
    ids = store.add_jobs(run, jobs + list(canaries.values()))
    board_shift = rng.normal(0, board_noise)
    windows: dict[str, list[tuple[int, float]]] = {}  # job key -> (tick, log shift) of each window

    shift_of: dict[str, list[float]] = {}  # job key -> the board's and process's shift of each window

    def window(job: Job, shift: float, own: float = 0.0) -> None:
        process = rng.normal(0, process_noise)
        windows.setdefault(job.key, []).append((next(_CLOCK), shift + process))
        shift_of.setdefault(job.key, []).append(own + process)

    for b in boards:
        window(canaries[(b, "first")], board_shift)
    seen: dict[str, int] = {}
    for c, job in zip(CONFIGS, jobs):
        shift = rng.normal(0, run_noise) + (0.0 if c in deaf else board_shift)
        for _ in range(repeats):
            window(job, shift, 0.0 if c in deaf else board_shift)
        seen[c[2]] = seen.get(c[2], 0) + 1
        if c[2] in boards:
            window(canaries[(c[2], "between" if seen[c[2]] <= gaps[c[2]] else "last")], board_shift)
    for c, job in zip(CONFIGS, jobs):
        store.job_started(ids[job.key], c[2])
        if c in missing:
            store.record(ids[job.key], JobResult.failed("ConnectError: board unreachable"))
            continue
        base = 2.0 + CONFIGS.index(c)
        extra = {"accuracy": (accuracy or {}).get(c, 0.95), "energy_mj": (energy or {}).get(c, float("nan")),
                 "peak_rss_mb": 100.0 + CONFIGS.index(c), "unstable": (unstable or {}).get(c),
                 "noisy": (noisy or {}).get(c)}
        if cv and c in cv:
            extra["cv"] = cv[c]
        own = 5.0 * canary[c[2]] if interleaved and canary else None
        result = _measured(rng, base * (slow or {}).get(c, 1.0), windows[job.key], c[2], extra, own,
                           shift_of.get(job.key, []))
        result.metrics["degraded"] = (degraded or {}).get(c)
        store.record(ids[job.key], result)
    for (b, _), job in canaries.items():
        store.job_started(ids[job.key], b)
        store.record(ids[job.key], _measured(rng, 5.0 * canary[b], windows[job.key], b, {}))
    if finish:
        store.finish_run(run, "ok")
    return run


def _measured(rng: np.random.Generator, median_ms: float, windows: list[tuple[int, float]], board: str,
              extra: dict, canary_ms: float | None = None, shared: list[float] = ()) -> JobResult:
    """A job's windows (each a tick of the clock and a log shift), folded as the sweep folds them;
    with ``canary_ms``, each window's interleaved canary, shifted by ``shared`` of that window."""
    results = []
    for i, (_, shift) in enumerate(windows):
        samples = latencies(rng, median_ms, n=2000 // len(windows), run_shift=shift)
        metrics = {"p50_ms": float(np.median(samples)), "p99_ms": float(np.percentile(samples, 99)),
                   "cv": float(np.std(samples) / np.mean(samples)), **extra}
        if canary_ms is not None:
            theirs = latencies(rng, canary_ms, n=1000, run_shift=shared[i])
            metrics.update(canary_p50_ms=float(np.median(theirs)), canary_p99_ms=float(np.percentile(theirs, 99)))
        results.append(JobResult("ok", metrics=metrics, samples_ns=(samples * 1e6).astype(np.int64)))
    reps = [as_repeat(w, i, board, float(t), t + 0.9) for i, ((t, _), w) in enumerate(zip(windows, results))]
    return combine(reps, results[-1])
