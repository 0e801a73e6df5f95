"""LiteRT (TensorFlow Lite) on real models: a small torch CNN converted with litert_torch
(NCHW and channel-last inputs) and quantized full-integer int8 with ai_edge_quantizer, run
through the runtime directly and through ``python -m devices.agent measure``."""

from __future__ import annotations

import importlib.metadata
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.cli import main
from devices.agent.errors import ArtifactIncompatible
from devices.agent.facts import default_probe_names
from devices.agent.runtimes import RUNTIMES, LiteRtRuntime, SleepRuntime, get_runtime
from devices.agent.runtimes.litert import feed_layout

EVAL_N = 200  # divisible by the batch of 4, so eval_n == EVAL_N
MARGIN = 0.05  # top-2 logit gap kept in the eval set (logits here span about +-1)


NHWC_SHAPE = [4, 3, 8, 8]  # 3 channels: with 1, NCHW and NHWC hold the same bytes and a wrong layout passes


def _nets():
    """The 1-channel CNN of the suite's shape; a 3-channel one for the layout and dynamic-batch
    tests (global mean pool: litert_torch cannot lower a flatten over a dynamic batch); a
    2-input model."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.pool = torch.nn.MaxPool2d(2)
            self.fc = torch.nn.Linear(8 * 4 * 4, lib.CLASSES)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))

    class Net3(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(NHWC_SHAPE[1], 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, lib.CLASSES)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))

    class TwoInputs(torch.nn.Module):
        def forward(self, a, b):
            return a + b

    class TwoOutputs(torch.nn.Module):
        def forward(self, x):
            return x * 2.0, x.mean(dim=(1, 2, 3))

    torch.manual_seed(0)
    return Net().eval(), Net3().eval(), TwoInputs().eval(), TwoOutputs().eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("ai_edge_litert")
    litert_torch = pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_quantizer")
    import torch
    from ai_edge_quantizer import quantizer, recipe

    d = tmp_path_factory.mktemp("litert-assets")
    net, net3, two, twoout = _nets()
    rng = np.random.RandomState(0)
    sample = torch.from_numpy(rng.standard_normal(lib.INPUT_SHAPE).astype(np.float32))
    paths = {k: d / (k + ".tflite") for k in ("fp32", "nhwc", "dyn", "int8", "two", "twoout")}
    litert_torch.convert(net, (sample,)).export(str(paths["fp32"]))
    sample3 = torch.from_numpy(rng.standard_normal(NHWC_SHAPE).astype(np.float32)).permute(0, 2, 3, 1)
    nhwc = litert_torch.to_channel_last_io(net3, args=[0]).eval()  # takes NHWC, feeds net3 NCHW
    litert_torch.convert(nhwc, (sample3.contiguous(),)).export(str(paths["nhwc"]))
    batch = torch.export.Dim("batch", min=1, max=64)  # NCHW with a dynamic batch: shape_signature [-1, 3, 8, 8]
    litert_torch.convert(net3, (sample3.permute(0, 3, 1, 2).contiguous(),),
                         dynamic_shapes=({0: batch},)).export(str(paths["dyn"]))
    litert_torch.convert(two, (sample, sample + 1)).export(str(paths["two"]))  # one tensor twice: one input used
    litert_torch.convert(twoout, (sample,)).export(str(paths["twoout"]))

    calib = [rng.standard_normal(lib.INPUT_SHAPE).astype(np.float32) for _ in range(8)]
    q = quantizer.Quantizer(str(paths["fp32"]))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    res = q.calibrate({"serving_default": [{"args_0": b} for b in calib]})
    q.quantize(res).export_model(str(paths["int8"]), overwrite=True)

    # Eval set: labels are the fp32 torch model's argmax, kept only with a clear top-2 gap,
    # so any f32 runtime must score exactly 1.0.
    cand = rng.standard_normal((4 * EVAL_N, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        logits = net(torch.from_numpy(cand)).numpy()
    top2 = np.sort(logits, axis=1)[:, -2:]
    keep = np.flatnonzero(top2[:, 1] - top2[:, 0] > MARGIN)[:EVAL_N]
    assert len(keep) == EVAL_N
    ex, ey = cand[keep], logits[keep].argmax(axis=1).astype(np.int64)
    assert len(set(ey.tolist())) > 1  # not a constant-label set that any model gets right
    np.savez(d / "eval.npz", x=ex, y=ey)

    x = make_x()
    x3 = np.random.RandomState(8).standard_normal(NHWC_SHAPE).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
        ref3 = net3(torch.from_numpy(x3)).numpy()
    np.save(d / "x.npy", x)
    return dict(paths, eval=d / "eval.npz", ex=ex, ey=ey, x=x, ref=ref, x3=x3, ref3=ref3, dir=d)


def make_x() -> np.ndarray:
    return np.random.RandomState(7).standard_normal(lib.INPUT_SHAPE).astype(np.float32)


def loaded(path: Path, **opts) -> LiteRtRuntime:
    rt = LiteRtRuntime(opts.pop("options", None), **opts)
    rt.load(str(path))
    return rt


def input_details(path: Path) -> dict:
    """The model's own input tensor details, read with a separate interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_input_details()[0]


def litert_spec(tmp_path: Path, artifact: Path, fmt: str = "tflite", runtime: str = "litert", **over) -> str:
    spec = lib.make_spec(artifact, runtime=runtime, **over)
    spec["artifact"] = {"path": str(artifact), "format": fmt, "sha256": None}
    return str(lib.write_spec(tmp_path, spec))


def measure_in_process(spec_path: str) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", spec_path], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_registry_and_probe() -> None:
    import ai_edge_litert

    assert get_runtime("litert") is LiteRtRuntime and RUNTIMES["litert"] is LiteRtRuntime
    assert not LiteRtRuntime.test_only and "litert" in default_probe_names()
    assert LiteRtRuntime.formats == frozenset({"tflite"}) and "tflite" in SleepRuntime.formats
    info = LiteRtRuntime.probe()
    assert info == {"name": "litert", "version": ai_edge_litert.__version__, "available": True,
                    "devices": ["CPU"], "library": "ai-edge-litert"}
    assert info["version"] == importlib.metadata.version("ai-edge-litert")


def test_fp32_nchw_matches_torch(models: dict) -> None:
    rt = loaded(models["fp32"])
    out = rt.run(models["x"])
    assert out.dtype == np.float32 and out.shape == (4, lib.CLASSES)
    np.testing.assert_allclose(out, models["ref"], atol=1e-4, rtol=0)
    eff = rt.effective()
    assert eff["threads"] == 1  # ai-edge-litert turns num_threads=None into 1
    assert eff["options"]["layout"] == "NCHW" and eff["options"]["input_quantization"] is None
    assert eff["options"]["xnnpack"] is True and eff["options"]["xnnpack_applied"] is True
    assert eff["options"]["op_resolver"] == "AUTO" and eff["options"]["num_threads"] is None


def test_infer_fn_is_the_interpreters_invoke(models: dict) -> None:
    rt = loaded(models["fp32"], threads=2)
    rt.prepare(models["x"])
    fn = rt.infer_fn()
    assert type(fn.__self__).__name__ == "Interpreter" and fn.__func__ is type(fn.__self__).invoke
    fn()
    out = fn.__self__.get_tensor(fn.__self__.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, models["ref"], atol=1e-4, rtol=0)  # the timed call does the real work
    assert rt.effective()["threads"] == 2 and rt.effective()["options"]["num_threads"] == 2
    rt.close()
    assert rt._interp is None


THREADS = textwrap.dedent("""
    import os, sys
    import numpy as np
    from devices.agent.runtimes.litert import LiteRtRuntime
    before = len(os.listdir("/proc/self/task"))
    rt = LiteRtRuntime(threads=int(sys.argv[2]))
    rt.load(sys.argv[1])
    rt.prepare(np.zeros((4, 1, 8, 8), np.float32))
    rt.infer_fn()()
    print(len(os.listdir("/proc/self/task")) - before)
""")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_threads_reach_the_interpreter(models: dict) -> None:
    """XNNPACK starts threads - 1 workers; the count proves num_threads got to the library."""
    def added(threads: int) -> int:
        proc = subprocess.run([sys.executable, "-c", THREADS, str(models["fp32"]), str(threads)],
                              cwd=lib.REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.split()[-1])

    assert added(1) == 0 and added(3) >= 2


def test_nhwc_model_takes_the_same_nchw_input(models: dict) -> None:
    assert list(input_details(models["nhwc"])["shape"]) == [4, 8, 8, 3]  # the fixture really is NHWC
    rt = loaded(models["nhwc"])
    out = rt.run(models["x3"])  # NCHW, as the agent always feeds
    np.testing.assert_allclose(out, models["ref3"], atol=1e-4, rtol=0)
    assert rt.effective()["options"]["layout"] == "NHWC"
    rt.prepare(models["x3"])
    fed = rt.infer_fn().__self__.get_tensor(input_details(models["nhwc"])["index"])
    np.testing.assert_array_equal(fed, models["x3"].transpose(0, 2, 3, 1))  # moved, not reshaped


def test_dynamic_batch_is_sized_to_the_input(models: dict) -> None:
    det = input_details(models["dyn"])
    assert list(det["shape_signature"]) == [-1, 3, 8, 8] and list(det["shape"]) == [1, 3, 8, 8]
    rt = loaded(models["dyn"])
    rt.prepare(models["x3"])
    rt.infer_fn()()
    np.testing.assert_allclose(rt.run(models["x3"]), models["ref3"], atol=1e-4, rtol=0)
    assert rt.effective()["options"]["layout"] == "NCHW"


def test_int8_input_quantized_with_the_models_own_scale(models: dict) -> None:
    det = input_details(models["int8"])
    scale, zp = det["quantization"]
    assert det["dtype"] is np.int8 and scale > 0
    rt = loaded(models["int8"])
    x = models["x"]
    rt.prepare(x)
    interp = rt.infer_fn().__self__
    fed = interp.get_tensor(det["index"])  # the tensor actually set, before any invoke
    want = np.clip(np.round(x / np.float32(scale)) + zp, -128, 127).astype(np.int8)
    assert fed.dtype == np.int8 and fed.shape == x.shape
    np.testing.assert_array_equal(fed, want)
    assert fed.min() < zp < fed.max()  # a real spread, not all one value

    out = rt.run(x)
    assert out.dtype == np.float32  # dequantized, not int8 codes
    eff = rt.effective()["options"]
    assert eff["input_dtype"] == "int8" and eff["input_quantization"] == {"scale": scale, "zero_point": zp}
    oq = eff["output_quantization"]
    assert oq is not None and oq["scale"] > 0
    assert np.abs(out - models["ref"]).max() < 10 * oq["scale"]  # close to fp32 after dequantizing
    codes = out / np.float32(oq["scale"]) + oq["zero_point"]
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-3)  # values lie on the output grid


def test_int8_top1_agrees_with_fp32(models: dict) -> None:
    rt = loaded(models["int8"])
    ex, ey = models["ex"], models["ey"]
    preds = np.concatenate([rt.run(ex[i:i + 4]).argmax(axis=1) for i in range(0, len(ex), 4)])
    agree = float(np.mean(preds == ey))
    assert agree >= 0.9, agree


@pytest.mark.parametrize("kind, threads", [("fp32", 2), ("int8", 1)])
def test_measure_via_module(tmp_path: Path, models: dict, kind: str, threads: int) -> None:
    spec = litert_spec(tmp_path, models[kind], eval={"path": str(models["eval"]), "max_samples": None},
                       measure={"threads": threads})
    rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", spec])
    assert rc == 0, stderr
    assert [e["event"] for e in events] == ["facts"] + ["progress"] * 4 + ["result"]
    facts, res = events[0], events[-1]
    assert facts["runtime"]["name"] == "litert" and facts["runtime"]["library"] == "ai-edge-litert"
    assert facts["runtime"]["version"] == LiteRtRuntime.probe()["version"] == res["runtime"]["version"]
    assert res["runtime"]["name"] == "litert" and res["precision"] == "as-model"
    assert res["latency"]["n"] == len(res["samples_ns"]) >= 20 and res["latency"]["p50_ms"] > 0
    assert res["eval_n"] == EVAL_N
    if kind == "fp32":
        assert res["accuracy"] == 1.0
    else:
        assert 0.9 <= res["accuracy"] <= 1.0
    opts = res["runtime"]["options"]
    assert res["threads"] == threads and opts["num_threads"] == threads
    assert opts["xnnpack"] is True and opts["xnnpack_applied"] is True and opts["layout"] == "NCHW"
    assert opts["input_dtype"] == ("float32" if kind == "fp32" else "int8")
    assert (opts["output_quantization"] is None) == (kind == "fp32")


def test_xnnpack_off_is_accepted_and_recorded(tmp_path: Path, models: dict) -> None:
    spec = litert_spec(tmp_path, models["fp32"], eval={"path": str(models["eval"]), "max_samples": None},
                       measure={"threads": None, "min_s": 0.1}, runtime_options={"xnnpack": False})
    rc, events = measure_in_process(spec)
    assert rc == 0, events[-1]
    res = events[-1]
    assert res["event"] == "result" and res["accuracy"] == 1.0
    opts = res["runtime"]["options"]
    assert opts["xnnpack"] is False and opts["xnnpack_applied"] is False
    assert opts["op_resolver"] == "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    assert opts["num_threads"] is None and res["threads"] == 1


@pytest.mark.parametrize("options, key", [({"xnnpack": "yes"}, "xnnpack"), ({"xnnpack": 1}, "xnnpack"),
                                          ({"delegate": "gpu"}, "delegate")])
def test_bad_options_name_the_key(options: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        LiteRtRuntime(options)


def test_bad_option_via_agent_is_protocol_error(tmp_path: Path, models: dict) -> None:
    rc, events = measure_in_process(litert_spec(tmp_path, models["fp32"], runtime_options={"xnnpack": "off"}))
    assert rc == 1 and events[-1]["kind"] == "ProtocolError" and "xnnpack" in events[-1]["message"]


def test_wrong_input_shape_is_artifact_incompatible(tmp_path: Path, models: dict) -> None:
    rt = loaded(models["fp32"])
    with pytest.raises(ArtifactIncompatible, match=r"\[4, 1, 8, 8\].*\[4, 3, 8, 8\]"):
        rt.prepare(np.zeros((4, 3, 8, 8), np.float32))
    rc, events = measure_in_process(litert_spec(tmp_path, models["nhwc"], input={"shape": [2, 3, 8, 8],
                                                                                 "dtype": "float32"}))
    err = events[-1]
    assert rc == 1 and err["kind"] == "ArtifactIncompatible"
    assert "[4, 8, 8, 3]" in err["message"] and "[2, 3, 8, 8]" in err["message"]


@pytest.mark.parametrize("model, x, layout", [
    ((4, 1, 8, 8), (4, 1, 8, 8), "NCHW"), ((4, 8, 8, 3), (4, 3, 8, 8), "NHWC"),
    ((-1, 3, 8, 8), (4, 3, 8, 8), "NCHW"), ((-1, 8, 8, 3), (2, 3, 8, 8), "NHWC"),
    ((3, 3, 3, 3), (3, 3, 3, 3), "NCHW"),  # ambiguous: equal shapes win
    ((4, 10), (4, 10), "as-given"),
])
def test_feed_layout(model: tuple, x: tuple, layout: str) -> None:
    assert feed_layout(model, x) == layout


def test_feed_layout_names_both_shapes() -> None:
    with pytest.raises(ArtifactIncompatible, match=r"\[1, 224, 224, 3\].*\[1, 3, 32, 32\]"):
        feed_layout([1, 224, 224, 3], (1, 3, 32, 32))
    with pytest.raises(ArtifactIncompatible, match=r"\[4, 10\].*\[4, 12\]"):
        feed_layout([4, 10], (4, 12))


def test_wrong_input_dtype_is_artifact_incompatible(models: dict) -> None:
    with pytest.raises(ArtifactIncompatible, match="expects float32.*int32"):
        loaded(models["fp32"]).prepare(np.zeros(lib.INPUT_SHAPE, np.int32))
    with pytest.raises(ArtifactIncompatible, match=r"expects int8 \(quantized\).*int32"):
        loaded(models["int8"]).prepare(np.zeros(lib.INPUT_SHAPE, np.int32))


def test_two_input_model_binds_both_inputs(tmp_path: Path, models: dict) -> None:
    """By the model's own names; the converter's names are not the ONNX graph's, so a spec whose
    names the model does not know is bound by position."""
    rt = loaded(models["two"])
    specs = rt.input_specs()
    assert len(specs) == 2 and all(s[1:] == (tuple(lib.INPUT_SHAPE), "float32") for s in specs)
    with pytest.raises(ArtifactIncompatible, match="model has 2 inputs"):
        rt.prepare(models["x"])
    a, b = models["x"], np.random.RandomState(9).standard_normal(lib.INPUT_SHAPE).astype(np.float32)
    (_, out), = rt.run_outputs({specs[0][0]: a, specs[1][0]: b})
    np.testing.assert_allclose(out, a + b, atol=1e-6, rtol=0)
    rt.prepare_feeds({"a": a, "b": 2 * b})  # not the model's names: by position
    interp = rt.infer_fn().__self__
    fed = [interp.get_tensor(d["index"]) for d in interp.get_input_details()]
    np.testing.assert_array_equal(fed[0], a)
    np.testing.assert_array_equal(fed[1], 2 * b)
    rt.infer_fn()()
    np.testing.assert_allclose(interp.get_tensor(interp.get_output_details()[0]["index"]), a + 2 * b, atol=1e-6,
                               rtol=0)
    with pytest.raises(ArtifactIncompatible, match="model inputs are"):
        rt.prepare_feeds({specs[0][0]: a, "b": b})  # one name known, one not: neither rule applies
    spec = litert_spec(tmp_path, models["two"], protocol=4, inputs=[
        {"name": "a", "shape": list(lib.INPUT_SHAPE), "dtype": "float32"},
        {"name": "b", "shape": list(lib.INPUT_SHAPE), "dtype": "float32"}])
    rc, events = measure_in_process(spec)
    assert rc == 0, events[-1]
    assert events[-1]["event"] == "result" and events[-1]["latency"]["n"] >= 20


def test_run_all_returns_every_output_of_a_two_output_model(models: dict) -> None:
    rt = loaded(models["twoout"])
    x = models["x"]
    outs = rt.run_all(x)
    named = rt.run_outputs({rt.input_specs()[0][0]: x})
    assert len(outs) == len(named) == 2 and [o.shape for o in outs] == [a.shape for _, a in named]
    by_shape = {o.shape: o for o in outs}
    assert set(by_shape) == {tuple(lib.INPUT_SHAPE), (lib.INPUT_SHAPE[0],)}
    np.testing.assert_allclose(by_shape[tuple(lib.INPUT_SHAPE)], x * 2.0, atol=1e-6, rtol=0)
    np.testing.assert_allclose(by_shape[(lib.INPUT_SHAPE[0],)], x.mean(axis=(1, 2, 3)), atol=1e-5, rtol=0)
    order = [d["name"] for d in rt.infer_fn().__self__.get_output_details()]
    assert [n for n, _ in named] == order  # the interpreter's output order, as run_all
    np.testing.assert_array_equal(rt.run(x), outs[0])  # run: the first of them


def test_onnx_artifact_is_refused_by_the_format_check(tmp_path: Path) -> None:
    onnx_model = lib.write_classifier(tmp_path / "model.onnx")
    rc, events = measure_in_process(litert_spec(tmp_path, onnx_model, fmt="onnx"))
    err = events[-1]
    assert rc == 1 and err["kind"] == "ArtifactIncompatible"
    assert err["message"] == "litert cannot read onnx artifacts (it reads: tflite)"
    assert not lib.by_event(events, "progress")  # refused before the load


def test_corrupt_file_is_artifact_incompatible(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 8)
    rc, events = measure_in_process(litert_spec(tmp_path, bad))
    err = events[-1]
    assert rc == 1 and err["kind"] == "ArtifactIncompatible" and "litert could not load" in err["message"]


def test_sleep_runtime_takes_a_tflite_artifact(tmp_path: Path, models: dict) -> None:
    rc, events = measure_in_process(litert_spec(tmp_path, models["fp32"], runtime="sleep",
                                                runtime_options={"latency_ms": 0.1}, measure={"min_s": 0.05}))
    assert rc == 0 and events[-1]["event"] == "result"


FALLBACK = textwrap.dedent("""
    import json, sys
    import numpy as np
    import ai_edge_litert.interpreter as real
    # The real interpreter stays reachable only under another name, as the tflite_runtime shim's
    # source; the agent's own import of ai_edge_litert must now fail.
    sys.modules["_real_litert_interpreter"] = real
    sys.modules["ai_edge_litert"] = None
    sys.modules["ai_edge_litert.interpreter"] = None
    sys.path.insert(0, sys.argv[1])
    try:
        import ai_edge_litert.interpreter
        blocked = False
    except ImportError:
        blocked = True
    from devices.agent.runtimes.litert import LiteRtRuntime
    info = LiteRtRuntime.probe()
    rt = LiteRtRuntime({"xnnpack": False}, threads=1)
    rt.load(sys.argv[2])
    np.save(sys.argv[4], rt.run(np.load(sys.argv[3])))
    print(json.dumps({"blocked": blocked, "probe": info, "effective": rt.effective(),
                      "shim": sys.modules["tflite_runtime.interpreter"].__file__}))
""")


def test_falls_back_to_tflite_runtime(tmp_path: Path, models: dict) -> None:
    shim = tmp_path / "shim" / "tflite_runtime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('__version__ = "2.14.0+shim"\n')
    (shim / "interpreter.py").write_text("from _real_litert_interpreter import Interpreter, OpResolverType\n")
    out_path = tmp_path / "out.npy"
    proc = subprocess.run(
        [sys.executable, "-c", FALLBACK, str(shim.parent), str(models["fp32"]), str(models["dir"] / "x.npy"),
         str(out_path)],
        cwd=lib.REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["blocked"] is True and got["shim"].startswith(str(shim))
    assert got["probe"] == {"name": "litert", "version": "2.14.0+shim", "available": True, "devices": ["CPU"],
                            "library": "tflite-runtime"}
    eff = got["effective"]
    assert eff["options"]["library"] == "tflite-runtime" and eff["threads"] == 1
    assert eff["options"]["xnnpack_applied"] is False  # OpResolverType came through the shim
    np.testing.assert_allclose(np.load(out_path), models["ref"], atol=1e-4, rtol=0)


def test_probe_reports_both_failures_when_nothing_imports() -> None:
    code = ("import sys, json\nsys.modules['ai_edge_litert'] = None\nsys.modules['tflite_runtime'] = None\n"
            "from devices.agent.runtimes.litert import LiteRtRuntime\nprint(json.dumps(LiteRtRuntime.probe()))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=lib.REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["available"] is False and info["version"] is None and info["devices"] == []
    assert "ai-edge-litert: ModuleNotFoundError" in info["reason"]
    assert "tflite-runtime: ModuleNotFoundError" in info["reason"]
