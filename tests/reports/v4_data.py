"""Stores with schema v4's data, filled through the real Store API: marks, repeats, cold
start, the board canary and the gate's verdicts. Imported by the v4 and browser tests.

Each night: on every board the canary runs first, then the board's configurations of
:data:`history_data.CONFIGS`, then the canary again; the store's clock (``NightClock``)
advances a minute per job so ``started`` tells the canaries apart. Configuration 0 is
marked unstable with a hostile reason, configuration 2 noisy; configuration 1 aggregates
five repeats (each kept in the ``repeats`` table) and from ``slow_from`` on is 30% slower,
which the gate's stored verdicts of that night call a regression (with a hostile note).
Configuration 2 built a TensorRT-like engine; configuration 3 (the hostile board) has no
cold start at all, as an older run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from history_data import CONFIGS, DAY, EVIL_DEVICE, NIGHT0, TAG, NightClock, p50_of

import harness.store.store as store_module
from harness.records import Job, JobResult, JobSettings, Repeat
from harness.store import open as open_store

UNSTABLE_REASON = 'CV 4.1% > 2.5% <script>alert("u")</script>'
NOISY_REASON = "load avg 3.2 & 'cpu' busy before the window"
EVIL_NOTE = '<b>note</b> & "quoted"'
REPEAT_P50S = (1.00, 0.98, 1.03, 1.01, 1.20)  # factors of the configuration's p50; the median is 1.01
BOARDS = ("orin", EVIL_DEVICE)


def canary_drift(board: str, night: int) -> float:
    """Within-run canary drift (last/first) per board and night: orin warms up, more each night."""
    return 1.0 + 0.03 * night if board == "orin" else 1.0


CANARY_P50 = {"orin": 5.0, EVIL_DEVICE: 8.0}
COLD = {0: (0.9, 45.0, None), 1: (0.5, 20.0, None), 2: (2.5, 8.0, 31.5)}  # load_s, first_infer_ms, engine_build_s


def _metrics(i: int, p50: float) -> dict[str, Any]:
    load_s, first_ms, build_s = COLD.get(i, (None, None, None))
    return {"p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.5, "std_ms": p50 * 0.05, "cv": 0.05,
            "peak_rss_mb": 100.0 + i, "accuracy": 0.90 - 0.01 * i, "energy_mj": p50 * 2.0, "throttled": False,
            "load_s": load_s, "first_infer_ms": first_ms, "engine_build_s": build_s,
            "p50_ci_lo_ms": p50 * 0.97, "p50_ci_hi_ms": p50 * 1.04, "repeats": 1,
            "unstable": UNSTABLE_REASON if i == 0 else None, "noisy": NOISY_REASON if i == 2 else None}  # fmt: skip


def fill_v4_store(db: Path, nights: int, *, slow_from: int | None = None, tag: str = TAG) -> list[str]:
    """Write ``nights`` runs (see the module docstring); returns the run ids, oldest first."""
    clock, runs = NightClock(), []
    with mock.patch.object(store_module, "time", clock), open_store(db) as store:
        for night in range(nights):
            clock.now = NIGHT0 + night * DAY
            run = store.create_run(suite="s", config={"suite": {"name": "s", "canary": True}, "devices": []}, tag=tag)
            for board in BOARDS:
                mine = [(i, c) for i, c in enumerate(CONFIGS) if c[2] == board]
                canaries = [Job("canary", "fp32", board, "onnxruntime", JobSettings(canary=w)) for w in ("first", "last")]
                jobs = [canaries[0], *(Job(*c) for _, c in mine), canaries[1]]
                ids = store.add_jobs(run, jobs)
                for k, job in enumerate(jobs):
                    clock.now += 60.0
                    store.job_started(ids[job.key], board)
                    if job.model == "canary":
                        p50 = CANARY_P50[board] * (canary_drift(board, night) if k else 1.0)
                        metrics = {"p50_ms": p50, "p90_ms": p50 * 1.05, "p99_ms": p50 * 1.2, "cv": 0.01,
                                   "repeats": 1, "throttled": False}  # fmt: skip
                        store.record(ids[job.key], JobResult("ok", metrics=metrics))
                        continue
                    i = mine[k - 1][0]
                    p50 = p50_of(i, night, slow_from)
                    metrics, repeats = _metrics(i, p50), []
                    if i == 1:
                        p50s = [p50 * f for f in REPEAT_P50S]
                        lo, hi = sorted(p50s)[0], sorted(p50s)[-1]
                        metrics.update(p50_ms=float(np.median(p50s)), repeats=5, p50_ci_lo_ms=lo, p50_ci_hi_ms=hi)
                        marks = [{"unstable": "CV 3%"} if r == 4 else {} for r in range(len(p50s))]
                        repeats = [Repeat(r, board, {"p50_ms": v, "cv": 0.02, **marks[r]}, None, clock.now + r,
                                          clock.now + r + 0.5) for r, v in enumerate(p50s)]  # fmt: skip
                    store.record(ids[job.key], JobResult("ok", metrics=metrics, variant={"size_bytes": 1e6 * (i + 1)},
                                                         repeats=repeats))  # fmt: skip
            store.finish_run(run, "ok")
            if slow_from is not None and night == slow_from:
                store.record_verdicts(run, runs[-1:], verdict_rows(regressed=1))
            runs.append(run)
    return runs


def verdict_rows(regressed: int) -> list[dict[str, Any]]:
    """Pass everywhere but ``regressed``'s latency (regression, with a hostile note); one
    board-drift and one missing verdict, so every kind the gate writes is on the page."""
    rows = []
    for i, (model, variant, device, runtime) in enumerate(CONFIGS):
        for metric in ("latency_p50", "latency_p90", "latency_p99", "accuracy"):
            bad = i == regressed and metric.startswith("latency")
            verdict = "regression" if bad else "pass"
            note = EVIL_NOTE if bad else ""
            if i == 0 and metric == "latency_p99":
                verdict, note = "board-drift", "board drift: the canary on orin moved +6.0% too"
            if i == 3 and metric == "accuracy":
                verdict, note = "missing", "no baseline measurement"
            rows.append({"model": model, "variant": variant, "device": device, "runtime": runtime,
                         "metric": metric, "verdict": verdict, "threshold": 1.0 if metric == "accuracy" else 0.05,
                         "ratio": 1.3 if bad else (0.0 if metric == "accuracy" else 1.0),
                         "ci_lo": 1.25 if bad else None, "ci_hi": 1.35 if bad else None, "p": 0.001 if bad else None,
                         "q": 0.004 if bad else None, "note": note})  # fmt: skip
    return rows
