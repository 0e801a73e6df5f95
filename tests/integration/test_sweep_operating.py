"""Operating points through the real CLI: Ray, the local transport, the agent zipapp, ONNX Runtime
and OpenVINO in the offline scenario, an inflight axis and a batch axis (the variant built per
batch), the store's columns, the report's operating curves, and a resume that finds every point."""

from __future__ import annotations

import textwrap

import pytest

import harness.store
from harness.cli import main

pytestmark = pytest.mark.usefixtures("ray_local")

SUITE = """
name: operating
models:
  - builtin: digits-cnn
variants: [fp32]
runtimes: [onnxruntime, openvino]
runtime_options:
  openvino: {inference_precision: f32}
measure: {scenario: offline, warmup_iters: 5, warmup_s: 0.1, min_iters: 50, min_s: 0.3, timeout_s: 120, quiet: null}
axes:
  inflight: [1, 2]
  batch: [1, 4]
report: {p99_budget_ms: 1000, min_throughput: 1}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache) -> dict:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("operating")
    suite = tmp / "suite.yaml"
    suite.write_text(textwrap.dedent(SUITE).lstrip())
    inventory = tmp / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp / 'board'}, "
                         "runtimes: [onnxruntime, openvino]}\n")
    cache_root = artifact_cache.root.parent  # the session's trained digits CNN
    (cache_root / "artifacts").mkdir(exist_ok=True)
    db, report = tmp / "h.db", tmp / "report.html"
    args = ["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", str(cache_root), "-q"]
    code = main([*args, "--report", str(report)])
    return {"code": code, "db": db, "report": report, "args": args}


def test_every_point_is_measured_and_stored(sweep: dict) -> None:
    assert sweep["code"] == 0
    with harness.store.open(sweep["db"]) as st:
        df = st.results()
    assert len(df) == 8 and set(df.status) == {"ok"}
    assert set(df.point) == {f"offline batch={b} inflight={i}" for b in (1, 4) for i in (1, 2)}
    assert set(zip(df.batch, df.inflight)) == {(1.0, 1.0), (1.0, 2.0), (4.0, 1.0), (4.0, 2.0)}
    assert set(df.scenario) == {"offline"} and set(df.resolution) == {"8x8"}
    assert (df.accuracy >= 0.95).all(), df[["runtime", "point", "accuracy"]]  # batch 4 reads the eval set in fours
    # Batch 4 built its own artifact (exported at batch 4): a different file from batch 1's.
    assert df.groupby("batch").artifact_sha256.nunique().to_dict() == {1.0: 1, 4.0: 1}
    assert df[df.batch == 1].artifact_sha256.iloc[0] != df[df.batch == 4].artifact_sha256.iloc[0]


def test_the_report_draws_the_curves_and_recommends_a_point(sweep: dict) -> None:
    page = sweep["report"].read_text(encoding="utf-8")
    assert 'id="sec-operating"' in page and "throughput vs p99" in page
    assert "@ offline batch=" in page  # the recommendation names the point that fits


def test_a_resume_finds_every_point_done(sweep: dict) -> None:
    with harness.store.open(sweep["db"]) as st:
        run = st.resolve_run()
    assert main([*sweep["args"], "--no-report", "--resume", run]) == 0
    with harness.store.open(sweep["db"]) as st:
        df = st.results()
    assert len(df) == 8 and set(df.status) == {"ok"} and df.attempts.max() == 1
