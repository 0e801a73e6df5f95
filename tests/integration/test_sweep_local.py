"""A small quickstart through the real CLI: Ray, the local transport, the agent zipapp,
ONNX Runtime and OpenVINO, the SQLite store and the HTML report."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import harness.store
from harness.cli import main

pytestmark = pytest.mark.usefixtures("ray_local")

FAST = "measure: {warmup_iters: 5, warmup_s: 0.1, min_iters: 50, min_s: 0.3, timeout_s: 120, quiet: null}"


def write_suite(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(body).lstrip() + FAST + "\n")
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache) -> dict:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("sweep")
    suite = write_suite(tmp, """
        name: mini-quickstart
        models:
          - builtin: digits-cnn
        variants: [fp32, int8-dynamic]
        runtimes: [onnxruntime, openvino]
        runtime_options:
          openvino: {inference_precision: f32}
        """)
    inventory = tmp / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp / 'board'}, "
                         "runtimes: [onnxruntime, openvino]}\n")
    cache_root = artifact_cache.root.parent  # reuse the session's trained digits CNN
    (cache_root / "artifacts").mkdir(exist_ok=True)
    report = tmp / "report.html"
    db = tmp / "h.db"
    code = main(["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", str(cache_root),
                 "--report", str(report), "--tag", "ci", "-q"])
    return {"code": code, "db": db, "report": report, "board": tmp / "board", "tmp": tmp}


def test_sweep_measures_every_job(sweep: dict) -> None:
    assert sweep["code"] == 0
    with harness.store.open(sweep["db"]) as st:
        df = st.results()
        samples = st.samples()
        run = st.resolve_run()
        facts = st.facts(run)
    assert len(df) == 4 and set(df.status) == {"ok"} and set(df.tag) == {"ci"}
    assert set(zip(df.variant, df.runtime)) == {(v, r) for v in ("fp32", "int8-dynamic") for r in ("onnxruntime", "openvino")}
    assert (df.accuracy >= 0.95).all(), df[["variant", "runtime", "accuracy"]]
    assert (df.n_iters >= 50).all() and (df.p50_ms > 0).all() and (df.p99_ms >= df.p50_ms).all()
    assert (df.peak_rss_mb > 10).all() and (df.size_bytes > 0).all() and (df.macs > 0).all()
    assert set(df[df.runtime == "openvino"].precision) == {"f32"}
    # Every timed iteration is stored, and the stored p50 is the samples' median.
    for row in df.itertuples():
        lat = samples[samples.job_id == row.job_id].latency_ms.to_numpy()
        assert len(lat) == row.n_iters
        assert np.median(lat) == pytest.approx(row.p50_ms, rel=1e-6)
    assert facts["local"]["runtime"]["name"] in ("onnxruntime", "openvino")
    # Host-side reference quality of every variant, against its model's fp32 variant.
    assert (df.host_accuracy >= 0.95).all() and (df[df.variant == "fp32"].agreement == 1.0).all()
    assert (df.agreement > 0.9).all() and (df.cosine > 0.99).all() and set(df.weights_precision) == {"fp32", "int8"}
    int8 = df[(df.variant == "int8-dynamic")].size_bytes.iloc[0]
    assert int8 < df[(df.variant == "fp32")].size_bytes.iloc[0]


def test_board_workdir_holds_artifacts_by_hash(sweep: dict) -> None:
    cache = sorted(p.name for p in (sweep["board"] / "cache").iterdir())
    pyz = [n for n in cache if n.endswith(".pyz")]
    onnx = [n for n in cache if n.endswith(".onnx")]
    assert len(pyz) == 1 and len(onnx) == 2  # one agent, two variants: sent once though measured twice
    assert all(len(n.split(".")[0]) == 64 for n in cache)
    spec = json.loads(next((sweep["board"] / "jobs").iterdir()).read_text())
    assert spec["protocol"] == 1 and spec["artifact"]["path"].startswith(str(sweep["board"]))


def test_report_is_written_and_regenerated(sweep: dict) -> None:
    html = sweep["report"].read_text()
    assert "digits-cnn" in html and "int8-dynamic" in html and " UTC" in html
    assert html.count("Plotly.newPlot") >= 1
    out = sweep["tmp"] / "again.html"
    assert main(["report", "--store", str(sweep["db"]), "-o", str(out)]) == 0
    assert out.stat().st_size > 100_000
    assert main(["runs", "list", "--store", str(sweep["db"])]) == 0


def test_second_sweep_rebuilds_nothing(sweep: dict, artifact_cache) -> None:  # noqa: ANN001
    before = {p: p.stat().st_mtime_ns for p in artifact_cache.root.parent.rglob("*.onnx")}
    suite = write_suite(sweep["tmp"], """
        name: again
        models: [{builtin: digits-cnn}]
        variants: [fp32, int8-dynamic]
        runtimes: [onnxruntime]
        """)
    code = main(["sweep", str(suite), "--store", str(sweep["db"]), "--cache-dir", str(artifact_cache.root.parent),
                 "--no-report", "-q"])
    assert code == 0
    after = {p: p.stat().st_mtime_ns for p in artifact_cache.root.parent.rglob("*.onnx")}
    assert before and before.items() <= after.items()


def mixed_suite(tmp_path: Path) -> Path:
    """The digits CNN beside a model file that is not an ONNX graph: one job ok, one failed."""
    (tmp_path / "broken.onnx").write_bytes(b"this is not an onnx graph")
    return write_suite(tmp_path, """
        name: mixed
        models:
          - builtin: digits-cnn
          - {name: broken, onnx: broken.onnx, input_shape: [1, 3, 8, 8]}
        variants: [fp32]
        runtimes: [onnxruntime]
        """)


def test_a_broken_model_fails_alone_with_exit_3(tmp_path: Path, artifact_cache, capsys) -> None:  # noqa: ANN001
    suite = mixed_suite(tmp_path)
    db = tmp_path / "h.db"
    code = main(["sweep", str(suite), "--store", str(db), "--cache-dir", str(artifact_cache.root.parent), "--no-report"])
    assert code == 3
    out = capsys.readouterr().out
    assert "1 ok, 1 failed" in out and "broken" in out
    with harness.store.open(db) as st:
        df = st.results().set_index("model")
    assert df.loc["digits-cnn", "status"] == "ok"
    assert df.loc["broken", "status"] == "failed" and df.loc["broken", "error"]


def test_a_report_that_cannot_be_written_keeps_the_summary_and_the_exit_code(tmp_path: Path, artifact_cache,  # noqa: ANN001
                                                                               capsys) -> None:  # noqa: ANN001
    """The results are stored before the report is written: a report path that is a directory
    costs the report, not the summary or exit 3; paths are printed as written (no markup)."""
    suite = mixed_suite(tmp_path)
    db = tmp_path / "[bold]runs" / "h.db"
    db.parent.mkdir()
    code = main(["sweep", str(suite), "--store", str(db), "--cache-dir", str(artifact_cache.root.parent),
                 "--report", str(tmp_path)])
    assert code == 3
    captured = capsys.readouterr()
    assert "1 ok, 1 failed" in captured.out and f"results: {db}" in captured.out
    assert "the report was not written" in captured.err


def test_variants_build_command(tmp_path: Path, artifact_cache, capsys) -> None:  # noqa: ANN001
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    suite = write_suite(tmp_path, """
        name: build-only
        models:
          - builtin: digits-cnn
          - {name: broken, onnx: broken.onnx, input_shape: [1, 3, 8, 8]}
        variants: [int8-dynamic]
        """)
    code = main(["variants", "build", str(suite), "--cache-dir", str(artifact_cache.root.parent)])
    out = capsys.readouterr().out
    assert code == 3  # the broken model's build failed, the other one stands
    assert "digits-cnn" in out and "int8-dynamic" in out and "failed broken [int8-dynamic]" in out
