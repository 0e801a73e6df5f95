"""Schema v5: a variant's fidelity figures and a result's degraded mark; a v4 store upgrades in place."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np

import harness.store
from devices.agent.spec import MeasureSettings
from harness.records import Job, JobResult, JobSettings
from harness.store.schema import MIGRATIONS, SCHEMA_VERSION

FIDELITY = {"inputs": {"x": "eval"}, "reference": "ref-id",
            "outputs": [{"name": "sigmoid_0.tmp_0", "shape": [1, 1, 8, 8], "cosine": 0.013, "snr_db": -0.4,
                         "max_abs_err": 0.98, "nonfinite": 0}]}  # fmt: skip
REASON = "cosine 0.013 < 0.95, SNR -0.4 dB < 10 dB on output 'sigmoid_0.tmp_0'"


def job(variant: str = "fp16") -> Job:
    return Job("det", variant, "local", "onnxruntime", JobSettings(MeasureSettings(min_iters=10)))


def result(degraded: str | None, fidelity: dict | None = FIDELITY, snr: float = -0.4) -> JobResult:
    quality = {} if fidelity is None else {"cosine": 0.013, "snr_db": snr, "max_abs_err": 0.98,
                                           "fidelity_inputs": "eval", "agreement": None, "fidelity": fidelity}
    return JobResult("ok", metrics={"p50_ms": 1.0, "n_iters": 10, "degraded": degraded},
                     samples_ns=np.full(10, 1_000_000, dtype=np.int64),
                     variant={"variant_id": "v-fp16", "model": "det", "chain": "fp16", "size_bytes": 10, **quality})


def test_a_v4_store_is_upgraded_and_its_old_variants_get_their_fidelity(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    conn = sqlite3.connect(path)
    for version, step in enumerate(MIGRATIONS[:4], start=1):
        conn.executescript(f"BEGIN;\n{step}\nPRAGMA user_version = {version};\nCOMMIT;")
    # What a v4 harness stored: the variant's cosine of its first output, no fidelity.
    conn.execute("INSERT INTO variants (id, model, chain, size_bytes, cosine, agreement, tool_versions_json)"
                 " VALUES ('v-fp16', 'det', 'fp16', 10, 0.5, 0.0, '{}')")
    conn.execute("INSERT INTO runs (id, suite, config_json, started) VALUES ('r4', 's', '{}', 0)")
    conn.execute("INSERT INTO jobs (run_id, key, model, variant, device, runtime, settings_json, status)"
                 " VALUES ('r4', 'k', 'det', 'fp16', 'local', 'onnxruntime', '{}', 'ok')")
    conn.execute("INSERT INTO results (job_id, p50_ms, variant_id) VALUES (1, 2.0, 'v-fp16')")
    conn.commit()
    conn.close()
    with harness.store.open(path) as st:
        old = st.results(run="r4").iloc[0]
        assert old.degraded is None and math.isnan(old.snr_db) and old.cosine == 0.5  # kept as stored
        assert st.variants().iloc[0].fidelity is None
        run = st.create_run(suite="s", config={})
        jid = st.add_jobs(run, [job()])[job().key]
        st.record(jid, result(REASON))
        row = st.results(run=run).iloc[0]
        assert row.degraded == REASON and row.snr_db == -0.4 and row.cosine == 0.013
        assert row.fidelity_inputs == "eval" and row.max_abs_err == 0.98 and np.isnan(row.agreement)
        v = st.variants().iloc[0]
        assert v.fidelity == FIDELITY and v.size_bytes == 10
        # Once scored, the record stands: a later record of the same id changes nothing.
        run2 = st.create_run(suite="s", config={})
        jid2 = st.add_jobs(run2, [job()])[job().key]
        st.record(jid2, result(None, {**FIDELITY, "reference": "other"}, snr=99.0))
        assert st.variants().iloc[0].fidelity["reference"] == "ref-id"
        assert st.results(run=run2).iloc[0].snr_db == -0.4 and st.results(run=run2).iloc[0].degraded is None
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5


def test_infinite_snr_round_trips(tmp_path: Path) -> None:
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        jid = st.add_jobs(run, [job("fp32")])[job("fp32").key]
        res = result(None, {**FIDELITY, "outputs": [{**FIDELITY["outputs"][0], "snr_db": math.inf}]}, snr=math.inf)
        st.record(jid, res)
        assert st.results(run=run).iloc[0].snr_db == math.inf
        assert st.variants().iloc[0].fidelity["outputs"][0]["snr_db"] == math.inf
