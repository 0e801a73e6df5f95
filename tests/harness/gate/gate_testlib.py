"""Runs with known latency distributions, written through the real store API."""

from __future__ import annotations

from typing import Any

import numpy as np

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
            gate: dict | None = None) -> str:
    """One run over CONFIGS; ``slow`` maps a config to a latency factor."""
    config: dict[str, Any] = {"suite": {"name": "s", "gate": gate}, "devices": []}
    run = store.create_run(suite="s", config=config, tag=tag)
    jobs = [Job(*c, {"measure": {}}) for c in CONFIGS]
    ids = store.add_jobs(run, jobs)
    for c, job in zip(CONFIGS, jobs):
        store.job_started(ids[job.key], c[2])
        if c in missing:
            store.record(ids[job.key], JobResult.failed("ConnectError: board unreachable"))
            continue
        base = 2.0 + CONFIGS.index(c)
        samples = latencies(rng, base * (slow or {}).get(c, 1.0), run_shift=rng.normal(0, run_noise))
        metrics = {"p50_ms": float(np.median(samples)), "p99_ms": float(np.percentile(samples, 99)), "accuracy": (accuracy or {}).get(c, 0.95),
                   "energy_mj": (energy or {}).get(c, float("nan")), "peak_rss_mb": 100.0 + CONFIGS.index(c)}
        store.record(ids[job.key], JobResult("ok", metrics=metrics, samples_ns=(samples * 1e6).astype(np.int64)))
    store.finish_run(run, "ok")
    return run
