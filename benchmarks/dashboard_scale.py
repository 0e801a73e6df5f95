#!/usr/bin/env python
"""Does the history dashboard of a year of nightly runs render fast enough and stay small?

Target (issue 6): 365 nightly runs x 120 configurations render in under 15 s on this
machine, and the page stays under 15 MB.

The script fills a temporary store through the real Store API (``create_run``, ``add_jobs``,
``record`` per job, ``finish_run``, ``record_verdicts`` per run, as a nightly sweep and
gate would; no per-iteration samples, which the dashboard does not read), then times the
real command, ``harness report --history --tag nightly``, end to end: store queries,
aggregation, figures, HTML and the atomic write. Filling is not timed.

The Store stamps each run with the wall clock; so that the runs are a year of nights (and
not 365 runs within one minute, which would put every point at the same x), the store's
``time`` module is swapped for a clock that advances one day per run while filling.

Synthetic numbers: per configuration a base latency, slow drift, 2% noise, a 15% step up
of p50/p99 in a few configurations from a given night on, with the gate's "regression"
stored for that night; every other verdict is "pass". Energy is measured on half the
devices (the others have no power sensor), as in a mixed lab.

    .venv/bin/python benchmarks/dashboard_scale.py [--runs 365] [--devices 4 --models 3
        --variants 5 --runtimes 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harness.store.store as store_module  # noqa: E402
from harness.cli import main as harness_main  # noqa: E402
from harness.records import Job, JobResult  # noqa: E402
from harness.store import open as open_store  # noqa: E402

TAG = "nightly"
START = 1_767_240_000.0  # 2026-01-01 04:00 UTC
DAY = 86_400.0
GATE_METRICS = ("latency_p50", "latency_p99", "energy_per_inference", "peak_memory", "accuracy")


class NightClock:
    """Stands in for the ``time`` module of ``harness.store.store``: one night per run."""

    strftime = staticmethod(time.strftime)  # before ``time`` below shadows the module here
    gmtime = staticmethod(time.gmtime)

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


def configurations(devices: int, models: int, variants: int, runtimes: int) -> list[tuple[str, ...]]:
    """(model, variant, device, runtime) for the grid of the given sizes."""
    grid = [(d, m, v, r) for d in range(devices) for m in range(models) for v in range(variants)
            for r in range(runtimes)]  # fmt: skip
    return [(f"model-{m}", f"v{v}" if v else "fp32", f"board-{d:02d}", f"rt-{r}") for d, m, v, r in grid]


def fill(db: Path, runs: int, configs: list[tuple[str, str, str, str]], seed: int = 0) -> dict[str, int]:
    """Write ``runs`` nightly runs of ``configs`` through the Store API; returns counts."""
    rng = np.random.default_rng(seed)
    n = len(configs)
    base = rng.uniform(2.0, 80.0, n)
    stepped = set(rng.choice(n, size=max(1, n // 20), replace=False).tolist())
    step_night = runs * 2 // 3
    has_energy = np.array([int(c[2][-2:]) % 2 == 0 for c in configs])
    clock = NightClock(START)
    regressions = 0
    with mock.patch.object(store_module, "time", clock), open_store(db) as store:
        for night in range(runs):
            clock.now = START + night * DAY
            run = store.create_run(suite="nightly", config={"suite": {"name": "nightly"}}, tag=TAG)
            jobs = [Job(*c) for c in configs]
            ids = store.add_jobs(run, jobs)
            drift = 1.0 + 0.05 * np.sin(night / 40.0)
            step = np.array([1.15 if (i in stepped and night >= step_night) else 1.0 for i in range(n)])
            p50 = base * drift * step * rng.normal(1.0, 0.02, n)
            for i, job in enumerate(jobs):
                store.record(ids[job.key], JobResult("ok", metrics={
                    "p50_ms": p50[i], "p90_ms": p50[i] * 1.1, "p99_ms": p50[i] * 1.3, "mean_ms": p50[i] * 1.02,
                    "std_ms": p50[i] * 0.04, "cv": 0.04, "n_iters": 500, "throughput": 1000 / p50[i],
                    "peak_rss_mb": 150 + i % 7 * 20 + rng.normal(0, 1), "accuracy": 0.9 - (i % 5) * 0.01,
                    "energy_mj": p50[i] * 4.5 if has_energy[i] else None,
                    "avg_power_w": 4.5 if has_energy[i] else None, "throttled": False,
                }, variant={"variant_id": f"{job.model}-{job.variant}", "model": job.model, "chain": job.variant,
                            "size_bytes": 4_000_000 >> (i % 5)}))  # fmt: skip
            store.finish_run(run, "ok")
            rows = []
            for i, c in enumerate(configs):
                for metric in GATE_METRICS:
                    hit = night == step_night and i in stepped and metric in ("latency_p50", "latency_p99")
                    rows.append(dict(zip(("model", "variant", "device", "runtime"), c, strict=True),
                                     metric=metric, verdict="regression" if hit else "pass",
                                     threshold=0.05, ratio=1.15 if hit else 1.0, ci_lo=1.1 if hit else 0.98,
                                     ci_hi=1.2 if hit else 1.02))  # fmt: skip
                    regressions += hit
            store.record_verdicts(run, [], rows)
    return {"runs": runs, "configurations": n, "jobs": runs * n, "verdicts": runs * n * len(GATE_METRICS),
            "regressions": regressions}  # fmt: skip


def time_render(db: Path, out: Path) -> float:
    """Seconds of ``harness report --history --tag nightly`` (the real command, in-process)."""
    start = time.perf_counter()
    code = harness_main(["report", "--history", "--tag", TAG, "--store", str(db), "-o", str(out)])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"harness report exited {code}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=365)
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--models", type=int, default=3)
    p.add_argument("--variants", type=int, default=5)
    p.add_argument("--runtimes", type=int, default=2)
    p.add_argument("--keep", type=Path, help="fill and render in this directory and keep the files")
    args = p.parse_args()
    configs = configurations(args.devices, args.models, args.variants, args.runtimes)
    with tempfile.TemporaryDirectory(prefix="dashboard-scale-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        db, out = workdir / "harness.db", workdir / "dashboard.html"
        t0 = time.perf_counter()
        counts = fill(db, args.runs, configs)
        fill_s = time.perf_counter() - t0
        print(f"filled {db} in {fill_s:.1f} s: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        seconds = time_render(db, out)
        size_mb = out.stat().st_size / 1e6
        print(f"render: {seconds:.2f} s (target < 15 s)   page: {size_mb:.2f} MB (target < 15 MB)   {out}")
        print(f"store: {db.stat().st_size / 1e6:.1f} MB; verdict: "
              f"{'OK' if seconds < 15 and size_mb < 15 else 'OVER TARGET'}")  # fmt: skip


if __name__ == "__main__":
    main()
