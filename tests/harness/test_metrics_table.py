"""The metric table (``devices.agent.metrics``) agrees with everything that reads metrics:
a real agent's result event, the store's columns, the gate's policy and the report's axes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from devices.agent import metrics
from devices.agent.metrics import BY_COLUMN, BY_GATE, METRIC_TABLE, change_text, limit_text
from harness.config.gate import Rules
from harness.coordinator.protocol import job_output, parse_events
from harness.store import open as open_store
from reports import axes
from tests.devices.agent import agent_testlib as lib

# Sources a plain CPU job does not send: no power meter here, no TensorRT, no interleaved canary.
ABSENT_HERE = {"energy_mj", "avg_power_w", "engine_build_s", "accuracy", "eval_n"}


def test_every_source_is_where_a_real_agent_puts_it(tmp_path: Path) -> None:
    out = lib.sleep_job_output(tmp_path, 0.5, min_s=0.1, min_iters=20, warmup_s=0.01)
    event = json.loads(out.splitlines()[-1])
    for m in METRIC_TABLE:
        if m.source is None or m.column in ABSENT_HERE or m.kind == "text" and m.column != "precision":
            continue
        value = event
        for step in m.source:
            value = value[step]
        assert value is not None, m.column
    lines = out + json.dumps({"event": "exit", "code": 0}) + "\n"
    result = job_output(parse_events(lines), "")
    assert result.status == "ok" and result.metrics["n_iters"] == len(result.samples_ns) >= 20


def test_the_store_has_a_column_per_metric(tmp_path: Path) -> None:
    with open_store(tmp_path / "h.db"):
        pass
    with sqlite3.connect(tmp_path / "h.db") as c:
        columns = {row[1]: row[2] for row in c.execute("PRAGMA table_info(results)")}
    for m in METRIC_TABLE:
        if m.details:  # kept in the details JSON: no column of its own (below)
            assert m.column not in columns and m.source is None, m.column
            continue
        assert columns[m.column] == ("TEXT" if m.kind == "text" else "REAL"), m.column


def test_metrics_kept_in_the_details_read_back_as_columns(tmp_path: Path) -> None:
    from harness.records import Job, JobResult

    job = Job("m", "fp32", "local", "onnxruntime")
    task = {"metric": "map_50_95", "quality": 0.41, "map_50_95": 0.41, "map_50": 0.9, "post_ms": 0.2, "prep_ms": 1.5}
    with open_store(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        ids = st.add_jobs(run, [job])
        st.record(ids[job.key], JobResult("ok", metrics={"p50_ms": 1.0, "n_iters": 3}, details={"task": task}))
        df = st.results()
    in_details = [m for m in METRIC_TABLE if m.details]
    assert {m.column for m in in_details} <= set(df.columns)
    row = df.iloc[0]
    assert (row.quality, row.map_50_95, row.map_50, row.post_ms, row.prep_ms) == (0.41, 0.41, 0.9, 0.2, 1.5)
    assert row.quality_metric == "map_50_95" and np.isnan(row.top5) and df["top5"].dtype == "float64"


def test_the_gate_judges_exactly_the_metrics_named_for_it() -> None:
    assert set(Rules.model_fields) == set(BY_GATE)


def test_the_reports_axes_take_direction_and_gate_name_from_the_table() -> None:
    for axis in (axes.LATENCY_AXIS, axes.P90_AXIS, axes.P99_AXIS, axes.ENERGY_AXIS, axes.MEMORY_AXIS,
                 axes.ACCURACY_AXIS):
        m = BY_COLUMN[axis.column]
        assert (axis.maximize, axis.gate, axis.relative) == (m.better == "higher", m.gate, not m.points)


def test_one_formatter_for_a_change() -> None:
    assert change_text(0.065) == "+6.5 %" and change_text(-0.8, points=True) == "-0.80 pts"
    assert change_text(None, missing="-") == "-" and change_text(float("nan")) == ""
    assert limit_text(0.05) == "+5 %" and limit_text(1, points=True) == "-1 pts"
    assert metrics.BY_GATE["accuracy"].points and not metrics.BY_GATE["latency_p99"].points
