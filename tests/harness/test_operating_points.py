"""Operating points on the coordinator: the suite's scenario keys and ``axes:`` (validated at load
with file and line), the plan they multiply, the jobs' identity and point, the spec the board is
sent, variants built per shape, the store's columns and the gate matching point with point."""

from __future__ import annotations

import dataclasses
import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import harness.store
from devices.agent.cli import main as agent_main
from devices.agent.spec import Artifact, parse_spec
from harness.axes import build_key, expand, reshaped
from harness.config import Device
from harness.config.gate import DEFAULT
from harness.config.suite import Suite, load_suite
from harness.coordinator.protocol import encode_spec, job_output, make_spec, parse_events
from harness.coordinator.repeats import as_repeat, combine
from harness.errors import ConfigError
from harness.gate.evaluate import evaluate
from harness.plan import make_plan
from harness.records import Job, JobResult, JobSettings, point_label
from tests.devices.agent import agent_testlib as lib

LOCAL = (Device(name="local", kind="local", runtimes=("onnxruntime", "openvino")),)
BASE = {"name": "ops", "models": [{"builtin": "digits-cnn"}], "variants": ["fp32"], "runtimes": ["onnxruntime"]}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.mark.parametrize("body,line,field,words", [
    ("axes:\n  batch: [1, 4]\n  colour: [red]\n", 6, "axes.colour", "unknown key 'colour'"),
    ("axes:\n  batch: []\n", 5, "axes.batch", "at least 1 item"),
    ("axes:\n  threads: [2, 0]\n", 5, "axes.threads.1", "greater than or equal to 1"),
    ("axes:\n  inflight: [1, 2]\n", 4, "axes", "need a scenario other than single-stream"),
    ("axes:\n  batch: [2, 2]\n", 5, "axes.batch", "listed twice"),
    ("measure: {scenario: paced}\n", 4, "measure", "rate_hz: scenario paced needs an arrival rate"),
    ("measure: {scenario: offline, rate_hz: 30}\n", 4, "measure", "rate_hz is not read by scenario offline"),
    ("measure: {scenario: bursty}\n", 4, "measure.scenario", "unknown scenario 'bursty'"),
    ("measure: {scenario: offline, threads: 2}\naxes: {threads: [1, 2]}\n", 5, "axes", "threads in one place"),
    ("measure: {scenario: offline, p99_bound_ms: 50}\naxes: {inflight: [1, 2]}\n", 5, "axes", "chooses the requests"),
    ("measure: {scenario: offline}\ncanary: {interleaved: true}\n", 5, "canary", "single-stream jobs only"),
])  # fmt: skip
def test_bad_operating_points_stop_the_load_at_their_line(tmp_path: Path, body: str, line: int, field: str,
                                                          words: str) -> None:
    path = write(tmp_path, "name: ops\nmodels:\n  - builtin: digits-cnn\n" + body)
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert err.value.location == f"{path}:{line}" and err.value.field == field and words in err.value.reason


def test_shape_axes_need_models_whose_shape_can_change(tmp_path: Path) -> None:
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(b"x")
    bad = {**BASE, "models": [{"name": "t", "tflite": str(tflite)}], "variants": ["tflite-as-is"],
           "runtimes": ["litert"], "axes": {"batch": [1, 2]}}
    with pytest.raises(ValueError, match="is a .tflite file, whose input shape is fixed"):
        Suite.model_validate(bad)
    with pytest.raises(ValueError, match="needs a 4-D NCHW input"):
        Suite.model_validate({**BASE, "models": [{"name": "v", "onnx": str(tflite), "input_shape": [1, 64]}],
                              "axes": {"resolution": [[8, 8]]}})


def test_axes_multiply_the_jobs_and_each_point_is_its_own_job() -> None:
    suite = Suite.model_validate({**BASE, "measure": {"scenario": "offline"},
                                  "axes": {"batch": [1, 4], "inflight": [1, 2, 4]}})
    jobs = make_plan(suite, LOCAL).jobs
    assert len(jobs) == 6 and len({j.key for j in jobs}) == 6
    points = [j.settings.point for j in jobs]
    assert points[0] == "offline batch=1 inflight=1" and points[-1] == "offline batch=4 inflight=4"
    assert {j.settings.measure.inflight for j in jobs} == {1, 2, 4} and {j.settings.axis("batch") for j in jobs} == {1, 4}
    assert jobs[-1].label() == "digits-cnn [fp32] on local/onnxruntime @ offline batch=4 inflight=4"
    for job in jobs:  # what the store keeps reads back to the same settings and key
        back = JobSettings.from_identity(json.loads(json.dumps(job.settings.identity())))
        assert back == job.settings and Job(job.model, job.variant, job.device, job.runtime, back).key == job.key


def test_a_default_suite_plans_as_before_and_the_canary_stays_single_stream() -> None:
    plain = make_plan(Suite.model_validate(BASE), LOCAL).jobs
    assert [j.settings.point for j in plain] == [""] and "scenario" not in plain[0].settings.identity()["measure"]
    suite = Suite.model_validate({**BASE, "canary": True, "measure": {"scenario": "paced", "rate_hz": 30}})
    jobs = make_plan(suite, LOCAL).jobs
    body, canaries = jobs[0], jobs[1:]
    assert body.settings.point == "paced" and body.key != plain[0].key
    assert body.settings.identity()["measure"]["rate_hz"] == 30.0
    assert all(c.settings.measure.scenario == "single-stream" and c.settings.point == "" for c in canaries)


def test_threads_and_inflight_axes_reach_the_wire_and_shapes_reach_the_build() -> None:
    settings = JobSettings(Suite.model_validate({**BASE, "measure": {"scenario": "offline"}}).measure.to_wire())
    point = expand(settings, {"threads": [2], "inflight": [3], "resolution": [(160, 128)], "batch": [4]})[0]
    assert (point.measure.threads, point.measure.inflight) == (2, 3)
    assert build_key("m", "fp32", point.axes) == ("m", "fp32", ("batch", 4), ("resolution", (160, 128)))
    assert reshaped((1, 3, 224, 224), point.axes) == (4, 3, 160, 128)
    assert build_key("m", "fp32", ()) == ("m", "fp32")


def test_the_spec_of_an_operating_point_needs_protocol_5() -> None:
    suite = Suite.model_validate({**BASE, "measure": {"scenario": "offline", "p99_bound_ms": 40}})
    job = make_plan(suite, LOCAL).jobs[0]
    raw = json.loads(encode_spec(make_spec(job, "j1", Artifact("/m.onnx"), (1, 1, 8, 8), None)))
    assert raw["protocol"] == 5 and raw["measure"]["scenario"] == "offline" and raw["measure"]["p99_bound_ms"] == 40
    assert parse_spec(raw).measure == job.settings.measure
    plain = make_plan(Suite.model_validate(BASE), LOCAL).jobs[0]
    raw = json.loads(encode_spec(make_spec(plain, "j2", Artifact("/m.onnx"), (1, 1, 8, 8), None)))
    assert raw["protocol"] == 1 and "scenario" not in raw["measure"]


def test_a_variant_is_built_per_shape(artifact_cache, tmp_path: Path) -> None:  # noqa: ANN001
    from harness.config.suite import BuiltinModel
    from harness.coordinator.builds import _build
    from harness.zoo import resolve_model

    source = resolve_model(BuiltinModel(builtin="mobilenetv2-224"), artifact_cache)  # random weights: no training
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "eval.npz", x=rng.normal(size=(4, 3, 224, 224)).astype(np.float32), y=np.arange(4))
    source = dataclasses.replace(source, eval_path=tmp_path / "eval.npz")  # as a model with an eval set
    cache = str(artifact_cache.root)
    own = _build(source, "fp32", cache, {})
    batch = _build(source, "fp32", cache, {}, point=(("batch", 2),))
    small = _build(source, "fp32", cache, {}, point=(("resolution", (96, 128)),))
    assert own.variant.input_shape == (1, 3, 224, 224)
    assert batch.variant.input_shape == (2, 3, 224, 224) and small.variant.input_shape == (1, 3, 96, 128)
    assert [g.shape for g in small.variant.inputs] == [(1, 3, 96, 128)]  # what the board is fed
    assert len({own.variant.variant_id, batch.variant.variant_id, small.variant.variant_id}) == 3
    assert batch.variant.eval_path == own.variant.eval_path is not None  # batch 2 still reads the eval set
    assert small.variant.eval_path is None  # no accuracy away from the model's own size


def agent_result(tmp_path: Path, **measure: object) -> JobResult:
    """A real sleep-runtime agent's result, read as the coordinator reads it."""
    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    spec = lib.make_spec(model, runtime="sleep", protocol=5, runtime_options={"latency_ms": 5},
                         measure={"warmup_s": 0.01, "min_iters": 20, "min_s": 0.1, **measure})
    out = io.StringIO()
    assert agent_main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 0
    return job_output(parse_events(out.getvalue() + json.dumps({"event": "exit", "code": 0}) + "\n"), "")


def test_the_store_keeps_the_operating_point_of_every_result(tmp_path: Path) -> None:
    suite = Suite.model_validate({**BASE, "measure": {"scenario": "paced", "rate_hz": 100},
                                  "axes": {"inflight": [1, 2]}})
    jobs = make_plan(suite, LOCAL).jobs
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="ops", config={})
        ids = st.add_jobs(run, jobs)
        for job in jobs:
            result = agent_result(tmp_path, scenario="paced", rate_hz=100, inflight=job.settings.measure.inflight)
            assert result.status == "ok", result.error
            st.record(ids[job.key], result)
        df = st.results(run=run).sort_values("inflight")
    assert list(df.point) == ["paced inflight=1", "paced inflight=2"] and list(df.inflight) == [1.0, 2.0]
    assert set(df.scenario) == {"paced"} and set(df.batch) == {4.0} and set(df.resolution) == {"8x8"}
    assert df.kept_up.dtype == "boolean" and df.kept_up.all() and (df.achieved_hz > 80).all()
    assert (df.late_fraction <= 0.05).all() and df.search_windows.isna().all()


def test_the_gate_compares_each_point_with_the_same_point(tmp_path: Path) -> None:
    suite = Suite.model_validate({**BASE, "measure": {"scenario": "offline"}, "axes": {"inflight": [1, 2]}})
    jobs = make_plan(suite, LOCAL).jobs
    rng = np.random.default_rng(0)
    with harness.store.open(tmp_path / "h.db") as st:
        runs = []
        for slow in (1.0, 1.0, 1.0, 1.3):  # tonight inflight=2 is 30% slower; inflight=1 is not
            run = st.create_run(suite="ops", config={"suite": {"name": "ops"}, "devices": []}, tag="nightly")
            ids = st.add_jobs(run, jobs)
            for job in jobs:
                factor = slow if job.settings.measure.inflight == 2 else 1.0
                base = 10.0 * job.settings.measure.inflight * factor
                samples = (base * np.exp(0.01 * rng.normal(size=500)) * 1e6).astype(np.int64)
                metrics = {"p50_ms": float(np.median(samples) / 1e6), "p99_ms": float(np.percentile(samples, 99) / 1e6),
                           "n_iters": 500, "cv": 0.01}
                result = JobResult("ok", metrics=metrics, samples_ns=samples)
                st.record(ids[job.key], combine([as_repeat(result, 0, "local", 1.0, 2.0)], result))  # as a sweep does
            st.finish_run(run, "ok")
            runs.append(run)
        result = evaluate(st, runs[-1], runs[:-1], DEFAULT)
    p50 = {v.config.get("point"): v for v in result.verdicts if v.metric == "latency_p50"}
    assert set(p50) == {"offline inflight=1", "offline inflight=2"}
    assert p50["offline inflight=2"].verdict == "regression" and p50["offline inflight=1"].verdict == "pass"
    assert p50["offline inflight=2"].label.endswith("@ offline inflight=2")
    assert not any(v.verdict == "missing" for v in result.verdicts)


def test_point_labels_read_stored_settings() -> None:
    assert point_label({"measure": {"threads": 2}}) == ""  # a job of an earlier store
    assert point_label({"measure": {"scenario": "single-stream"}, "axes": {"batch": 8}}) == "batch=8"
    assert point_label({"measure": {"scenario": "offline"}, "axes": {"resolution": [160, 128], "inflight": 4},
                        "power_mode": {"name": "eco"}}) == "offline eco inflight=4 resolution=160x128"
