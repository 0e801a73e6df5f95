"""Runs with known latency distributions, written through the real store API."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.coordinator.repeats import as_repeat, combine
from harness.records import Job, JobResult
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


def add_run(store: Store, rng: np.random.Generator, tag: str | None = "nightly", slow: dict | None = None,
            missing: tuple = (), accuracy: dict | None = None, energy: dict | None = None, run_noise: float = 0.005,
            gate: dict | None = None, repeats: int = 1, process_noise: float = 0.0, unstable: dict | None = None,
            canary: dict | None = None) -> str:
    """One run over CONFIGS; ``slow`` maps a config to a latency factor. ``repeats`` windows per
    job, each in its "own process" (a log shift of sd ``process_noise``), folded as the sweep does;
    ``canary`` maps a board to its canary's latency factor (two canary jobs per board, first and last);
    ``unstable`` maps a config to its mark."""
    config: dict[str, Any] = {"suite": {"name": "s", "gate": gate}, "devices": []}
    run = store.create_run(suite="s", config=config, tag=tag)
    jobs = [Job(*c, {"measure": {}}) for c in CONFIGS]
    canaries = [Job("canary", "fp32", board, "onnxruntime", {"canary": when}) for board in (canary or {})
                for when in ("first", "last")]
    ids = store.add_jobs(run, jobs + canaries)
    for c, job in zip(CONFIGS, jobs):
        store.job_started(ids[job.key], c[2])
        if c in missing:
            store.record(ids[job.key], JobResult.failed("ConnectError: board unreachable"))
            continue
        base = 2.0 + CONFIGS.index(c)
        extra = {"accuracy": (accuracy or {}).get(c, 0.95), "energy_mj": (energy or {}).get(c, float("nan")),
                 "peak_rss_mb": 100.0 + CONFIGS.index(c), "unstable": (unstable or {}).get(c)}
        shift = rng.normal(0, run_noise)
        store.record(ids[job.key], _measured(rng, base * (slow or {}).get(c, 1.0), shift, repeats, process_noise, extra))
    for job in canaries:
        store.job_started(ids[job.key], job.device)
        store.record(ids[job.key], _measured(rng, 5.0 * canary[job.device], rng.normal(0, run_noise), 1, process_noise, {}))
    store.finish_run(run, "ok")
    return run


def _measured(rng: np.random.Generator, median_ms: float, shift: float, repeats: int, process_noise: float,
              extra: dict) -> JobResult:
    windows = []
    for i in range(repeats):
        samples = latencies(rng, median_ms, n=2000 // repeats, run_shift=shift + rng.normal(0, process_noise))
        metrics = {"p50_ms": float(np.median(samples)), "p99_ms": float(np.percentile(samples, 99)), **extra}
        windows.append(JobResult("ok", metrics=metrics, samples_ns=(samples * 1e6).astype(np.int64)))
    reps = [as_repeat(w, i, None, float(i), float(i + 1)) for i, w in enumerate(windows)]
    return combine(reps, windows[-1])
