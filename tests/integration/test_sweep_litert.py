"""A Pi-style row through the real CLI: one model on ONNX Runtime and on LiteRT, its ONNX
variants on the one and its tflite variants (converted and quantized for real) on the other."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest

import harness.store
from harness.cli import main

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache) -> dict:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("litert")
    suite = tmp / "suite.yaml"
    suite.write_text(textwrap.dedent("""
        name: pi-row
        models:
          - builtin: digits-cnn
        variants: [fp32, tflite-fp32, tflite-int8]
        runtimes: [onnxruntime, litert]
        measure: {warmup_iters: 5, warmup_s: 0.1, min_iters: 50, min_s: 0.3, timeout_s: 120, threads: 1, quiet: null}
        runtime_options:
          litert: {xnnpack: true}
        """).lstrip())
    inventory = tmp / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp / 'board'}, "
                         "runtimes: [onnxruntime, litert]}\n")
    cache_root = artifact_cache.root.parent
    (cache_root / "artifacts").mkdir(exist_ok=True)
    db = tmp / "h.db"
    code = main(["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", str(cache_root),
                 "--report", str(tmp / "report.html"), "-q"])
    with harness.store.open(db) as st:
        df = st.results()
    with sqlite3.connect(db) as conn:
        details = {job: json.loads(text) for job, text in conn.execute("SELECT job_id, details_json FROM results")}
    return {"code": code, "results": df, "details": details, "report": tmp / "report.html"}


def test_onnx_variants_on_ort_and_tflite_variants_on_litert(sweep: dict) -> None:
    assert sweep["code"] == 0
    df = sweep["results"]
    assert set(zip(df.variant, df.runtime)) == {("fp32", "onnxruntime"), ("tflite-fp32", "litert"),
                                                ("tflite-int8", "litert")}
    assert set(df.status) == {"ok"} and (df.p50_ms > 0).all() and (df.n_iters >= 50).all()
    acc = dict(zip(df.variant, df.accuracy))
    assert acc["tflite-fp32"] == pytest.approx(acc["fp32"], abs=1e-9)  # the same network, measured on the board
    assert acc["tflite-int8"] >= acc["tflite-fp32"] - 0.01
    sizes = dict(zip(df.variant, df.size_bytes))
    assert sizes["tflite-int8"] < 0.6 * sizes["tflite-fp32"]  # 35 kB of weights; per-channel scales and graph stay
    assert set(df[df.runtime == "litert"].weights_precision) == {"fp32", "int8"}


def test_litert_results_record_threads_xnnpack_and_the_library(sweep: dict) -> None:
    df = sweep["results"]
    for row in df[df.runtime == "litert"].itertuples():
        assert row.threads == 1
        runtime = sweep["details"][row.job_id]["runtime"]
        assert runtime["name"] == "litert" and runtime["version"]
        options = runtime["options"]
        assert options["xnnpack"] is True and options["num_threads"] == 1 and options["library"] == "ai-edge-litert"
        assert options["layout"] == "NHWC"  # tflite recipes convert to channel-last input by default
        assert (options["input_dtype"] == "int8") == (row.variant == "tflite-int8")
    html = sweep["report"].read_text()
    assert "tflite-int8" in html and "litert" in html
