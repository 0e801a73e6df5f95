"""Histories for the dashboard tests: frames by hand, and stores filled through the real Store API.

The Store stamps every run with the wall clock, so runs created in a test would all start
within one second; :class:`NightClock` stands in for ``harness.store.store``'s ``time``
module so that each run starts one night after the previous one, as in a nightly tag.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd

import harness.store.store as store_module
from harness.records import Job, JobResult
from harness.store import open as open_store

TAG = "nightly"
NIGHT0 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
DAY = 86_400.0
EVIL_DEVICE = '<script>alert("dev")</script>'
EVIL_VARIANT = "int8 \"fast\" & 'tiny'"
#: (model, variant, device, runtime)
CONFIGS: tuple[tuple[str, str, str, str], ...] = (
    ("resnet18", "fp32", "orin", "onnxruntime"),
    ("resnet18", "int8", "orin", "onnxruntime"),
    ("resnet18", "fp32", "orin", "openvino"),
    ("resnet18", EVIL_VARIANT, EVIL_DEVICE, "onnxruntime"),
)


class NightClock:
    """Stands in for the ``time`` module of ``harness.store.store``: one night per run."""

    strftime = staticmethod(time.strftime)  # before ``time`` below shadows the module here
    gmtime = staticmethod(time.gmtime)

    def __init__(self, start: float = NIGHT0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


def p50_of(config_index: int, night: int, slow_from: int | None = None) -> float:
    """The synthetic p50 of a configuration in a night: 10, 20, 30... ms, +30% once slowed."""
    base = 10.0 * (config_index + 1)
    return base * (1.3 if slow_from is not None and night >= slow_from and config_index == 1 else 1.0)


def fill_store(db: Path, nights: int, *, slow_from: int | None = None, fail: tuple[int, int] | None = None,
               tag: str | None = TAG, budget: dict[str, float] | None = None) -> list[str]:  # fmt: skip
    """Write ``nights`` runs of :data:`CONFIGS`; returns the run ids, oldest first.

    Args:
        db: the store file.
        nights: how many runs.
        slow_from: from this night on, configuration 1 is 30% slower, and the gate's stored
            verdicts of that night say "regression" for its latency_p50 and latency_p99.
        fail: (night, configuration index) of a job that failed.
        tag: the runs' tag.
        budget: the suite's ``report:`` settings stored with each run.
    """
    clock, runs = NightClock(), []
    with mock.patch.object(store_module, "time", clock), open_store(db) as store:
        for night in range(nights):
            clock.now = NIGHT0 + night * DAY
            config = {"suite": {"name": "s", "report": budget}, "devices": []}
            run = store.create_run(suite="s", config=config, tag=tag)
            jobs = [Job(*c) for c in CONFIGS]
            ids = store.add_jobs(run, jobs)
            for i, job in enumerate(jobs):
                if fail == (night, i):
                    store.record(ids[job.key], JobResult.failed("ConnectError: board unreachable"))
                    continue
                p50 = p50_of(i, night, slow_from)
                metrics = {"p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.5, "std_ms": p50 * 0.05,
                           "cv": 0.05, "peak_rss_mb": 100.0 + i, "accuracy": 0.90 - 0.01 * i,
                           "energy_mj": p50 * 2.0, "throttled": False}  # fmt: skip
                store.record(ids[job.key], JobResult("ok", metrics=metrics, variant={"size_bytes": 1e6 * (i + 1)}))
            store.finish_run(run, "ok")
            if slow_from is not None and night == slow_from:
                store.record_verdicts(run, runs[-1:], _verdicts(regressed=1))
            runs.append(run)
    return runs


def _verdicts(regressed: int) -> list[dict[str, Any]]:
    """Every configuration passes every metric, except ``regressed``'s p50, p90 and p99."""
    rows = []
    for i, (model, variant, device, runtime) in enumerate(CONFIGS):
        for metric in ("latency_p50", "latency_p90", "latency_p99", "accuracy"):
            bad = i == regressed and metric.startswith("latency")
            rows.append({"model": model, "variant": variant, "device": device, "runtime": runtime,
                         "metric": metric, "verdict": "regression" if bad else "pass", "threshold": 0.05,
                         "ratio": 1.3 if bad else 1.0, "ci_lo": 1.25 if bad else 0.99,
                         "ci_hi": 1.35 if bad else 1.01})  # fmt: skip
    return rows


def result_row(run: str, config: tuple[str, str, str, str], status: str = "ok", **metrics: float) -> dict:
    """One job of a hand-made history frame (metrics default to missing)."""
    model, variant, device, runtime = config
    row = {"run": run, "model": model, "variant": variant, "device": device, "runtime": runtime,
           "status": status, "p50_ms": None, "p99_ms": None, "energy_mj": None, "peak_rss_mb": None,
           "accuracy": None}  # fmt: skip
    row.update(metrics)
    return row


def runs_frame(n: int, spacing_s: float = DAY) -> pd.DataFrame:
    """``n`` runs ``r0``... started ``spacing_s`` apart, given newest first (order must not matter)."""
    started = [NIGHT0 + i * spacing_s for i in range(n)]
    return pd.DataFrame({"run": [f"r{i}" for i in range(n)], "started": started})[::-1]
