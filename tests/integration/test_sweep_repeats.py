"""Repeats in fresh processes, interleaved order and the board canary (in windows of its own and
interleaved inside each job's), through the real CLI
(Ray, the local transport, the agent, ONNX Runtime, the SQLite store)."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import numpy as np
import pandas as pd
import pytest

import harness.store
from harness.cli import main
from harness.gate.canary import CanaryWindows

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache) -> dict:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("repeats")
    suite = tmp / "suite.yaml"
    suite.write_text(textwrap.dedent("""
        name: repeats
        models:
          - builtin: digits-cnn
        variants: [fp32, int8-dynamic]
        runtimes: [onnxruntime]
        canary: {every: 2, interleaved: true, block_s: 0.05}
        measure: {warmup_iters: 5, warmup_s: 0.05, min_iters: 40, min_s: 0.2, timeout_s: 120,
                  repeats: 3, order: interleaved, quiet: {wait_s: 0}}
        """).lstrip())
    inventory = tmp / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp / 'board'}, runtimes: [onnxruntime]}}\n")
    cache_root = artifact_cache.root.parent
    (cache_root / "artifacts").mkdir(exist_ok=True)
    db = tmp / "h.db"
    code = main(["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", str(cache_root),
                 "-q"])
    with harness.store.open(db) as st:
        return {"code": code, "results": st.results(), "repeats": st.repeats(), "samples": st.samples(), "db": db}


def test_each_job_runs_its_repeats_and_the_headline_is_their_median(sweep: dict) -> None:
    assert sweep["code"] == 0
    df, reps, samples = sweep["results"], sweep["repeats"], sweep["samples"]
    digits = df[df.model == "digits-cnn"]
    assert len(digits) == 2 and set(digits.status) == {"ok"} and set(digits.repeats) == {3.0}
    for row in digits.itertuples():
        mine = reps[reps.job_id == row.job_id]
        assert sorted(mine.repeat) == [0, 1, 2]
        assert row.p50_ms == pytest.approx(float(np.median(mine.p50_ms)))
        assert mine.p50_ms.min() <= row.p50_ci_lo_ms <= row.p50_ms <= row.p50_ci_hi_ms <= mine.p50_ms.max()
        assert row.n_iters == mine.n_iters.sum()
        # one fresh process per repeat: each window's samples are kept apart
        per_repeat = samples[samples.job_id == row.job_id].groupby("repeat").latency_ms.median()
        assert per_repeat.to_numpy() == pytest.approx(mine.sort_values("repeat").p50_ms.to_numpy())


def test_interleaved_order_alternates_and_the_canary_runs_first_every_two_windows_and_last(sweep: dict) -> None:
    df, reps = sweep["results"], sweep["repeats"]
    canary = df[df.model == "canary"]
    assert len(canary) == 3 and set(canary.status) == {"ok"} and set(canary.device) == {"local"}  # first, between, last
    rows = df.set_index("job_id")
    seq = [(rows.variant[r.job_id] if rows.model[r.job_id] != "canary" else "canary", r.repeat)
           for r in reps.sort_values("started").itertuples()]
    assert seq == [("canary", 0), ("fp32", 0), ("int8-dynamic", 0), ("canary", 0), ("int8-dynamic", 1), ("fp32", 1),
                   ("canary", 1), ("fp32", 2), ("int8-dynamic", 2), ("canary", 0)]
    order = reps.sort_values("started")
    assert (order.started.to_numpy()[1:] >= order.finished.to_numpy()[:-1]).all()  # one board: windows never overlap
    with harness.store.open(sweep["db"]) as st:  # the gate finds the canary next to every result
        windows = CanaryWindows(st, set(df.run))
        for job_id in df[df.model == "digits-cnn"].job_id:
            y, c = windows.pair(int(job_id), 50)
            assert np.isfinite(y) and np.isfinite(c) and windows.interleaved(int(job_id), 50)


def test_the_canary_inside_each_window_is_kept_apart_from_the_job(sweep: dict) -> None:
    reps, samples = sweep["repeats"], sweep["samples"]
    mine = reps[reps.model == "digits-cnn"]
    assert len(mine) == 6 and (mine.canary_p50_ms > 0).all() and (mine.canary_p99_ms >= mine.canary_p50_ms).all()
    # MobileNetV2 at 224 px is far slower than the digits net (the samples' split is tested in the agent's tests)
    assert (mine.canary_p50_ms > 5 * mine.p99_ms).all()
    for r in mine.itertuples():
        got = samples[(samples.job_id == r.job_id) & (samples.repeat == r.repeat)]
        assert len(got) == r.n_iters and 5 * got.latency_ms.median() < r.canary_p50_ms
    assert reps[reps.model == "canary"].get("canary_p50_ms", pd.Series(dtype=float)).isna().all()
    with sqlite3.connect(sweep["db"]) as conn:  # the last window's canary summary, in the job's details
        raw = conn.execute("SELECT details_json FROM results WHERE job_id=?", (int(mine.job_id.iloc[0]),)).fetchone()
    details = json.loads(raw[0])
    assert details["canary"]["runtime"] == "onnxruntime" and details["canary"]["latency"]["n"] > 0
