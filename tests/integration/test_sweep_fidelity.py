"""A sweep through the real CLI where one variant is past its model's fidelity limit: it is
marked degraded in the terminal and the store, left out of the report's fronts and
recommendations with a note, and failed by a gate policy that asks for it."""

from __future__ import annotations

import contextlib
import html
import io
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import harness.store
from harness.cli import main
from reports.context import load_context
from reports.sections.pareto import ParetoSection
from reports.sections.recommend import RecommendSection

pytestmark = pytest.mark.usefixtures("ray_local")


def tiny_onnx(path: Path) -> Path:
    """x [1, 32] -> y [1, 8, 16]: a head-shaped output, no eval set (no accuracy to vouch)."""
    w = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Reshape", ["h", "shape"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([1, 8, 16], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache) -> dict:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("fidelity-sweep")
    tiny_onnx(tmp / "tiny.onnx")
    # fp16 rounds the weights: SNR about 70 dB, far past this model's own 100 dB limit; fp32 is exact.
    (tmp / "suite.yaml").write_text(textwrap.dedent("""
        name: fidelity
        models:
          - {name: tiny, onnx: tiny.onnx, input_shape: [1, 32]}
        variants: [fp32, fp16]
        runtimes: [onnxruntime]
        fidelity:
          models:
            tiny: {min_snr_db: 100}
        gate: {degraded: fail}
        report: {latency_budget_ms: 1000}
        measure: {warmup_iters: 5, warmup_s: 0.1, min_iters: 50, min_s: 0.3, timeout_s: 120, quiet: null}
        """).lstrip())
    inventory = tmp / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp / 'board'}, "
                         "runtimes: [onnxruntime]}\n")
    cache_root = artifact_cache.root.parent
    (cache_root / "artifacts").mkdir(exist_ok=True)
    db, report = tmp / "h.db", tmp / "report.html"
    terminal = io.StringIO()
    with contextlib.redirect_stdout(terminal):
        code = main(["sweep", str(tmp / "suite.yaml"), "--inventory", str(inventory), "--store", str(db),
                     "--cache-dir", str(cache_root), "--report", str(report), "-q"])
    args = ["--inventory", str(inventory), "--store", str(db), "--cache-dir", str(cache_root), "-q"]
    return {"code": code, "db": db, "report": report, "out": terminal.getvalue(), "suite": tmp / "suite.yaml",
            "args": args}


def test_the_degraded_variant_is_marked_in_the_terminal_and_the_store(sweep: dict) -> None:
    assert sweep["code"] == 0  # degraded is a mark, not a failed job
    lines = [line.strip() for line in sweep["out"].splitlines() if "degraded" in line]
    assert len(lines) == 1 and lines[0].startswith("degraded tiny [fp16] on onnxruntime: SNR ") and "100 dB on output 'y'" in lines[0]
    with harness.store.open(sweep["db"]) as st:
        df = st.results().set_index("variant")
        variants = st.variants().set_index("chain")
    assert set(df.status) == {"ok"}
    reason = df.loc["fp16", "degraded"]
    assert reason.startswith("SNR ") and reason.endswith(" dB < 100 dB on output 'y'")
    assert 40 < df.loc["fp16", "snr_db"] < 100 and df.loc["fp16", "cosine"] > 0.9999
    assert pd.isna(df.loc["fp32", "degraded"]) and df.loc["fp32", "snr_db"] == math.inf
    assert set(df.fidelity_inputs) == {"synthetic"} and df.agreement.isna().all()  # [1, 8, 16]: no class scores
    outputs = variants.loc["fp16", "fidelity"]["outputs"]
    assert [o["name"] for o in outputs] == ["y"] and outputs[0]["shape"] == [1, 8, 16] and "agreement" not in outputs[0]


def test_the_report_leaves_it_out_of_the_fronts_and_the_recommendations(sweep: dict) -> None:
    page = html.unescape(sweep["report"].read_text())
    assert "Left out on local as degraded" in page and "tiny [fp16] on onnxruntime: SNR" in page
    with harness.store.open(sweep["db"]) as st:
        ctx = load_context(st, st.resolve_run())
    plotted = {html.unescape(c[0]) for fig in ParetoSection().render(ctx).figures for t in fig.data
               if (t.meta or {}).get("role") == "points" for c in t.customdata}
    assert plotted == {"fp32"}
    picks = html.unescape(RecommendSection().render(ctx).html)
    assert "<b>fp32</b>" in picks and "<b>fp16</b>" not in picks and "Left out as degraded" in picks


def test_the_suites_gate_fails_the_release_that_would_ship_it(sweep: dict, capsys) -> None:  # noqa: ANN001
    with harness.store.open(sweep["db"]) as st:
        baseline = st.resolve_run()
    assert main(["sweep", str(sweep["suite"]), *sweep["args"], "--no-report"]) == 0  # the variants are cached
    capsys.readouterr()
    code = main(["gate", "--candidate", "latest", "--baseline", baseline, "--store", str(sweep["db"])])
    out = capsys.readouterr().out
    assert code == 1 and "tiny [fp16]" in out and "degraded" in out and "100 dB" in out
