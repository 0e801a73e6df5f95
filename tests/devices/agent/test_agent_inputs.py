"""Multi-input models on the board: the spec's ``inputs``, every input bound for the timed loop
by ONNX Runtime and OpenVINO, and the eval pass feeding ``x`` to the first input and the eval
set's own array (else the timed loop's data) to the others."""

from __future__ import annotations

import io
import json
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent import PROTOCOL
from devices.agent.cli import main
from devices.agent.errors import ArtifactIncompatible, ProtocolError
from devices.agent.inputs import make_feeds, make_input
from devices.agent.runtimes import OnnxRuntime, OpenVinoRuntime, SleepRuntime
from devices.agent.spec import Artifact, EvalSet, JobSpec, ModelInput, NamedInput, parse_spec, spec_to_json

K_SHAPE = [4, 1]
INPUTS = [{"name": "x", "shape": list(lib.INPUT_SHAPE), "dtype": "float32"},
          {"name": "k", "shape": K_SHAPE, "dtype": "int64"}]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("two-inputs")
    ev = lib.make_eval_set(d / "plain.npz", n=200)
    with np.load(ev) as data:
        x, y = data["x"], data["y"]
    k = (np.arange(len(x)) % 3 == 0).astype(np.int64).reshape(-1, 1)  # not what the timed loop's seeds give
    np.savez(d / "with_k.npz", x=x, y=y, k=k)
    np.savez(d / "bad_k.npz", x=x, y=y, k=np.zeros((len(x), 2), np.int64))
    np.savez(d / "short_k.npz", x=x, y=y, k=np.zeros((8, 1), np.int64))
    return {"model": lib.write_two_inputs(d / "two.onnx"), "plain": ev, "with_k": d / "with_k.npz", "x": x, "y": y,
            "k": k, "bad_k": d / "bad_k.npz", "short_k": d / "short_k.npz"}


def two_spec(model: Path, runtime: str = "onnxruntime", **over: object) -> dict:
    return lib.make_spec(model, runtime=runtime, protocol=4, inputs=INPUTS, **over)


def measure(tmp_path: Path, spec: dict) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def expected_accuracy(y: np.ndarray, k_rows: np.ndarray) -> float:
    """Top-1 against the labels when row i is fed k_rows[i] (4-row batches, tail dropped)."""
    n = len(y) // 4 * 4
    pred = np.where(k_rows[:n].reshape(-1) == 1, 0, y[:n])
    return float(np.mean(pred == y[:n]))


# ---------------------------------------------------------------- the wire


def test_the_spec_carries_every_input_and_round_trips() -> None:
    spec = JobSpec("j", "onnxruntime", Artifact("/m.onnx"), ModelInput((4, 1, 8, 8)), EvalSet("/e.npz"),
                   inputs=(NamedInput("x", (4, 1, 8, 8)), NamedInput("k", (4, 1), "int64")))
    raw = json.loads(json.dumps(spec_to_json(spec)))
    assert raw["protocol"] == 4 <= PROTOCOL  # INPUTS_PROTOCOL; a later step (5: scenarios) reads it too
    assert raw["inputs"] == INPUTS and raw["input"] == {"shape": [4, 1, 8, 8], "dtype": "float32"}
    assert parse_spec(raw) == spec
    one = spec_to_json(JobSpec("j", "onnxruntime", Artifact("/m.onnx"), ModelInput((4, 1, 8, 8))))
    assert "inputs" not in one and one["protocol"] == 1  # a one-input job's spec is what older agents read
    assert parse_spec(one).inputs == ()
    assert parse_spec(dict(one, inputs=None)).inputs == ()
    boolean = JobSpec("j", "onnxruntime", Artifact("/m.onnx"), ModelInput((2, 3), "bool"))
    assert spec_to_json(boolean)["protocol"] == 4  # an older agent does not know bool


@pytest.mark.parametrize("inputs, needle", [
    ([{"shape": [4, 1, 8, 8], "dtype": "float32"}, INPUTS[1]], "spec is missing key inputs[0].name"),
    ([INPUTS[0], {"name": "k", "shape": [4, 1.5], "dtype": "int64"}],
     "spec key inputs[1].shape must be a non-empty list of positive ints, got [4, 1.5]"),
    ([INPUTS[0], {"name": "k", "shape": [4, True], "dtype": "int64"}], "spec key inputs[1].shape"),
    ([INPUTS[0], {"name": "", "shape": [4, 1], "dtype": "int64"}], "spec key inputs[1].name must be a non-empty"),
    ([INPUTS[0], {"name": 3, "shape": [4, 1], "dtype": "int64"}], "spec key inputs[1].name must be str"),
    ([INPUTS[0], {"name": "x", "shape": [4, 1], "dtype": "int64"}], "inputs[1].name repeats the input name 'x'"),
    ([INPUTS[0], {"name": "k", "shape": [4, 1], "dtype": "int16"}], "spec key inputs[1].dtype must be one of"),
    ([INPUTS[0], {"name": "k", "shape": [4, 1]}], "spec is missing key inputs[1].dtype"),
    ([INPUTS[0], dict(INPUTS[1], layout="nc")], "unknown spec key inputs[1].layout"),
    ([INPUTS[0], "k"], "spec key inputs[1] must be an object"),
    ([INPUTS[1], INPUTS[0]], "spec key inputs[0] ([4, 1] int64) must be the spec's input ([4, 1, 8, 8] float32)"),
    ([], "spec key inputs must be a non-empty list"),
    ({"x": INPUTS[0]}, "spec key inputs must be list"),
])
def test_a_bad_input_is_refused_naming_the_key(tmp_path: Path, inputs: object, needle: str) -> None:
    spec = lib.make_spec(tmp_path / "m.onnx", protocol=4, inputs=inputs)
    with pytest.raises(ProtocolError) as exc:
        parse_spec(spec)
    assert needle in str(exc.value)
    rc, events = measure(tmp_path, spec)  # and the agent answers it as a protocol error, before the load
    assert rc == 1 and events[-1]["kind"] == "ProtocolError" and needle in events[-1]["message"]


# ---------------------------------------------------------------- the data


def test_each_input_gets_seeded_data_in_its_own_dtype() -> None:
    feeds = make_feeds([NamedInput("x", (4, 1, 8, 8)), NamedInput("k", (4, 1), "int64"),
                        NamedInput("m", (4, 6), "bool"), NamedInput("q", (2, 5), "uint8")], seed=7)
    assert list(feeds) == ["x", "k", "m", "q"]
    np.testing.assert_array_equal(feeds["x"], make_input((4, 1, 8, 8), "float32", 7))  # the first: as one-input jobs
    assert feeds["k"].dtype == np.int64 and set(np.unique(feeds["k"])) <= {0, 1}
    assert feeds["m"].dtype == np.bool_ and feeds["m"].any() and not feeds["m"].all()
    assert feeds["q"].dtype == np.uint8 and feeds["q"].max() > 1  # image-like codes keep their range
    np.testing.assert_array_equal(feeds["k"], make_input((4, 1), "int64", 8))  # input i: seed + i
    assert not np.array_equal(make_feeds([NamedInput("x", (4, 1, 8, 8))], 8)["x"], feeds["x"])


# ---------------------------------------------------------------- the runtimes


@pytest.mark.parametrize("cls", [OnnxRuntime, OpenVinoRuntime], ids=["onnxruntime", "openvino"])
def test_runtimes_bind_both_inputs_by_name(assets: dict, cls: type) -> None:
    rt = cls({"inference_precision": "f32"} if cls is OpenVinoRuntime else None, 1)
    rt.load(str(assets["model"]))
    assert [(n, s, d) for n, s, d in rt.input_specs()] == [("x", (None, 1, 8, 8), "float32"),
                                                           ("k", (None, 1), "int64")]
    x = assets["x"][:4]
    ones, zeros = np.ones((4, 1), np.int64), np.zeros((4, 1), np.int64)
    (name, out), = rt.run_outputs({"k": ones, "x": x})  # any order of names
    assert name == "logits" and list(out.argmax(axis=1)) == [0, 0, 0, 0]
    (_, out), = rt.run_outputs({"x": x, "k": zeros})
    np.testing.assert_array_equal(out.argmax(axis=1), assets["y"][:4])
    rt.prepare_feeds({"x": x, "k": ones})
    rt.infer_fn()()
    with pytest.raises(ArtifactIncompatible, match=r"model inputs are \['x', 'k'\]; the spec gives \['x', 'kk'\]"):
        rt.prepare_feeds({"x": x, "kk": ones})
    with pytest.raises(ArtifactIncompatible, match=r"input 'k' expects int64, spec gives float32"):
        rt.prepare_feeds({"x": x, "k": ones.astype(np.float32)})
    with pytest.raises(ArtifactIncompatible, match="model has 2 inputs"):
        rt.prepare(x)
    rt.close()


def test_the_sleep_runtime_lists_what_it_was_fed() -> None:
    rt = SleepRuntime({"latency_ms": 0.0})
    assert rt.input_specs() == [("x", (None,), "float32")]
    rt.prepare_feeds({"a": np.zeros((3, 2), np.float32), "b": np.zeros((3,), np.int64)})
    assert rt.input_specs() == [("a", (3, 2), "float32"), ("b", (3,), "int64")]
    (name, out), = rt.run_outputs({"a": np.zeros((5, 2), np.float32), "b": np.zeros((5,), np.int64)})
    assert name == "scores" and out.shape == (5, 10) and list(out.argmax(axis=1)) == [0] * 5


# ---------------------------------------------------------------- through the agent


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_a_two_input_model_is_measured_with_both_inputs(tmp_path: Path, assets: dict, runtime: str) -> None:
    opts = {"inference_precision": "f32"} if runtime == "openvino" else {}
    spec = two_spec(assets["model"], runtime, runtime_options=opts,
                    eval={"path": str(assets["with_k"]), "max_samples": None})
    rc, events = measure(tmp_path, spec)
    assert rc == 0, events[-1]
    res = events[-1]
    assert res["event"] == "result" and res["runtime"]["name"] == runtime
    assert res["latency"]["n"] == len(res["samples_ns"]) >= 20
    # The eval set's own k, batch by batch: rows with k = 1 predict class 0.
    assert res["eval_n"] == 200 and res["accuracy"] == pytest.approx(expected_accuracy(assets["y"], assets["k"]))
    assert res["accuracy"] < 1.0


def test_without_its_array_an_input_gets_the_timed_loops_data(tmp_path: Path, assets: dict) -> None:
    spec = two_spec(assets["model"], eval={"path": str(assets["plain"]), "max_samples": None})
    rc, events = measure(tmp_path, spec)
    assert rc == 0, events[-1]
    k = make_input(tuple(K_SHAPE), "int64", 1)  # input 1, seed 0 + 1: the same batch every time
    assert 0 < k.sum() < len(k)
    want = expected_accuracy(assets["y"], np.tile(k, (len(assets["y"]) // 4 + 1, 1)))
    assert events[-1]["accuracy"] == pytest.approx(want) and want < 1.0


def test_the_sleep_runtime_takes_a_multi_input_job_with_an_eval_set(tmp_path: Path, assets: dict) -> None:
    spec = two_spec(assets["model"], "sleep", runtime_options={"latency_ms": 0.1}, measure={"min_s": 0.05},
                    eval={"path": str(assets["with_k"]), "max_samples": None})
    rc, events = measure(tmp_path, spec)
    assert rc == 0, events[-1]
    assert events[-1]["accuracy"] == pytest.approx(float(np.mean(assets["y"] == 0)))  # it predicts label 0


def test_a_task_eval_feeds_every_input(tmp_path: Path, assets: dict) -> None:
    spec = two_spec(assets["model"], eval={"path": str(assets["with_k"]), "max_samples": 100,
                                           "task": {"kind": "classification", "top_k": 3}})
    rc, events = measure(tmp_path, spec)
    assert rc == 0, events[-1]
    res = events[-1]
    assert res["eval_n"] == 100 and res["task"]["n"] == 100
    assert res["accuracy"] == pytest.approx(expected_accuracy(assets["y"][:100], assets["k"][:100]))


@pytest.mark.parametrize("npz, needle", [
    ("bad_k", "eval set array 'k' has shape [200, 2]; input 'k' takes [4, 1]"),
    ("short_k", "eval set array 'k' has 8 rows; the 50 batches of x need 200"),
])
def test_an_eval_array_that_cannot_feed_its_input_fails_before_timing(tmp_path: Path, assets: dict, npz: str,
                                                                     needle: str) -> None:
    rc, events = measure(tmp_path, two_spec(assets["model"], eval={"path": str(assets[npz]), "max_samples": None}))
    assert rc == 1 and events[-1]["kind"] == "ArtifactIncompatible" and needle in events[-1]["message"]
    assert not lib.by_event(events, "progress")  # refused before the load


def test_a_one_input_spec_of_a_two_input_model_says_so(tmp_path: Path, assets: dict) -> None:
    rc, events = measure(tmp_path, lib.make_spec(assets["model"]))
    err = events[-1]
    assert rc == 1 and err["kind"] == "ArtifactIncompatible"
    assert "model has 2 inputs (x, k); the spec gives one" in err["message"]


def test_a_wrong_name_is_artifact_incompatible(tmp_path: Path, assets: dict) -> None:
    spec = lib.make_spec(assets["model"], protocol=4, inputs=[INPUTS[0], dict(INPUTS[1], name="kk")])
    rc, events = measure(tmp_path, spec)
    assert rc == 1 and events[-1]["kind"] == "ArtifactIncompatible"
    assert events[-1]["message"] == "model inputs are ['x', 'k']; the spec gives ['x', 'kk']"


def test_a_two_input_job_with_its_interleaved_canary(tmp_path: Path, assets: dict) -> None:
    canary = lib.write_classifier(tmp_path / "canary.onnx", seed=1)
    spec = two_spec(assets["model"], measure={"min_s": 0.1}, canary={
        "runtime": "onnxruntime", "artifact": {"path": str(canary), "format": "onnx", "sha256": None},
        "input": {"shape": list(lib.INPUT_SHAPE), "dtype": "float32"}, "runtime_options": {}, "block_s": 0.02})
    rc, events = measure(tmp_path, spec)
    assert rc == 0, events[-1]
    res = events[-1]
    assert res["latency"]["n"] >= 20 and res["canary"]["latency"]["n"] > 0 and res["canary"]["runtime"] == "onnxruntime"


def test_via_the_module_on_openvino(tmp_path: Path, assets: dict) -> None:
    spec = two_spec(assets["model"], "openvino", runtime_options={"inference_precision": "f32"})
    rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", str(lib.write_spec(tmp_path, spec))])
    assert rc == 0, stderr
    assert events[0]["protocol"] == PROTOCOL and events[-1]["event"] == "result" and events[-1]["latency"]["n"] >= 20
