"""The TensorRT runtime.

Three layers, from what runs everywhere to what needs a GPU:

1. Without TensorRT (this machine): the probe says why it is unavailable, and the agent
   answers a tensorrt job with a RuntimeUnavailable error event.
2. The parts that need no GPU, for real: option validation, the engine cache key, the cache
   directory and files, the calibration batches, the calibrator's feeding loop.
3. The runtime's control flow (parse, build or load from the cache, bind, infer, copy out,
   calibrate) driven through a fake ``tensorrt`` module and a fake CUDA backend. The fakes
   follow NVIDIA's documented Python API as the runtime uses it: they prove the agent's
   logic, not that TensorRT behaves as documented.
4. The real thing, skipped with the reason printed where ``tensorrt`` cannot be imported:
   build, time and check accuracy of fp32 / fp16 / int8 engines through the agent, and
   the cache hit on the second job.
"""

from __future__ import annotations

import enum
import io
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.cli import main
from devices.agent.errors import ArtifactIncompatible, RuntimeUnavailable
from devices.agent.facts import default_probe_names
from devices.agent.runtimes import RUNTIMES, TensorRtRuntime, cuda_mem, open_runtime, trt_calib
from devices.agent.runtimes import trt_support as ts


def trt_importable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return False
    return True


no_trt = pytest.mark.skipif(trt_importable(), reason="tensorrt is importable here; this checks its absence")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("trt-assets")
    return {"model": lib.write_classifier(d / "model.onnx"), "eval": lib.make_eval_set(d / "eval.npz", n=362)}


def measure_in_process(tmp_path: Path, spec: dict, name: str = "spec.json") -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, spec, name))], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


# ---------------------------------------------------------------- 1. without TensorRT


@no_trt
def test_probe_says_why_unavailable() -> None:
    info = TensorRtRuntime.probe()
    assert info["name"] == "tensorrt" and info["available"] is False and info["devices"] == []
    assert info["reason"] == "tensorrt not importable: No module named 'tensorrt'"


@no_trt
def test_agent_measure_is_runtime_unavailable(tmp_path: Path, assets: dict) -> None:
    spec = lib.write_spec(tmp_path, lib.make_spec(assets["model"], runtime="tensorrt"))
    rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", str(spec)])
    assert rc == 1 and [e["event"] for e in events] == ["facts", "error"]
    assert events[0]["runtime"]["available"] is False
    err = events[-1]
    assert err["kind"] == "RuntimeUnavailable" and err["job_id"] == "job-tensorrt"
    assert "tensorrt" in err["message"] and "not importable" in err["message"]
    assert "Traceback" not in stderr


def test_registered_and_in_inventory(tmp_path: Path) -> None:
    assert RUNTIMES["tensorrt"] is TensorRtRuntime and not TensorRtRuntime.test_only
    assert "tensorrt" in default_probe_names()
    assert TensorRtRuntime.formats == {"onnx"} and TensorRtRuntime.precisions == {"f32", "f16", "int8"}
    # The repository's commented Jetson entry validates once uncommented.
    from harness.config import load_inventory

    lines, out, block = (lib.REPO / "inventory.yaml").read_text().splitlines(), [], False
    for line in lines:
        block = line.startswith("  # - name: orin-01") or (block and line.startswith("  #   "))
        out.append(line.replace("  # ", "  ", 1) if block else line)
    (tmp_path / "inventory.yaml").write_text("\n".join(out) + "\n")
    devices = {d.name: d for d in load_inventory(tmp_path / "inventory.yaml").devices}
    assert devices["orin-01"].runtimes == ("tensorrt", "onnxruntime")


# ---------------------------------------------------------------- 2. pure parts


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"precision": "fp8"}, "precision must be one of fp32, fp16, int8, got 'fp8'"),
        ({"precision": "f16"}, "precision must be one of"),
        ({"workspace_mb": -1}, "workspace_mb must be a positive integer (MiB) or null, got -1"),
        ({"workspace_mb": 0}, "workspace_mb"),
        ({"workspace_mb": True}, "workspace_mb"),
        ({"workspace_mb": "512"}, "workspace_mb"),
        ({"timing_cache": "yes"}, "timing_cache must be true or false"),
        ({"engine_cache": ""}, "engine_cache must be a path or null"),
        ({"calibration": 3}, "calibration must be a path or null"),
        ({"calibration_samples": 0}, "calibration_samples must be an integer >= 1"),
        ({"device": -1}, "device must be an integer >= 0"),
        ({"inference_precision": "f32"}, "unknown runtime_options key 'inference_precision'"),
    ],
)
def test_bad_options_are_value_errors(options: dict, needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        TensorRtRuntime(options)
    assert needle in str(exc.value)


def test_good_options_and_defaults() -> None:
    rt = TensorRtRuntime({"precision": "int8", "workspace_mb": 256, "calibration": "/data/c.npz",
                          "engine_cache": None, "timing_cache": False, "device": 1}, threads=2)
    assert rt.options["calibration_samples"] == 512
    assert TensorRtRuntime().options["engine_cache"] == "~/.cache/edge-harness/trt-engines"
    eff = rt.effective()
    assert eff["precision"] == "int8" and eff["threads"] is None and eff["options"]["fp16_fallback"] is True
    assert eff["engine_cached"] is None and eff["engine_build_s"] is None  # not loaded yet


def test_bad_option_through_the_agent_is_protocol_error(tmp_path: Path, assets: dict) -> None:
    """Options are checked before availability, so a typo is reported even without TensorRT."""
    spec = lib.make_spec(assets["model"], runtime="tensorrt", runtime_options={"precision": "half"})
    rc, events = measure_in_process(tmp_path, spec)
    assert rc == 1 and events[-1]["kind"] == "ProtocolError"
    assert "runtime_options.precision" in events[-1]["message"] and "fp16" in events[-1]["message"]


def test_engine_key_changes_with_what_changes_the_engine() -> None:
    def key(options: dict | None = None, **over: Any) -> str:
        args = dict(onnx_sha256="a" * 64, trt_version="10.3.0", device="Orin sm_87",
                    profile_shape=(4, 1, 8, 8), calibration_sha256=None)
        args.update(over)
        return TensorRtRuntime(options).engine_key(**args)

    base = key()
    assert base == key() and len(base) == 32 and int(base, 16) >= 0
    changed = [
        key(onnx_sha256="b" * 64), key(trt_version="8.6.2"), key(device="NVIDIA H200 sm_90"),
        key(profile_shape=(8, 1, 8, 8)), key(profile_shape=None), key({"precision": "fp16"}),
        key({"workspace_mb": 1024}), key({"precision": "int8"}, calibration_sha256="c" * 64),
    ]
    assert len(set(changed)) == len(changed) and base not in changed
    int8 = {"precision": "int8", "calibration": "/a.npz"}
    assert key(int8, calibration_sha256="c" * 64) != key(int8, calibration_sha256="d" * 64)
    assert key(int8, calibration_sha256="c" * 64) != key(dict(int8, calibration_samples=64), calibration_sha256="c" * 64)
    # Where the cache lives, the timing cache, the calibration path (content counts) and
    # calibration settings of a non-int8 build do not change the engine.
    same = [key({"engine_cache": "/elsewhere"}), key({"timing_cache": False}), key({"calibration": "/x.npz"}),
            key({"calibration_samples": 7}), key({"device": 1})]
    assert set(same) == {base}
    assert key(int8, calibration_sha256="c" * 64) == key(dict(int8, calibration="/b.npz"), calibration_sha256="c" * 64)


def test_parse_version() -> None:
    assert ts.parse_version("10.3.0.26") == (10, 3, 0, 26)
    assert ts.parse_version("8.5.2.2") >= (8, 5) > ts.parse_version("8.4.3")
    assert ts.parse_version("8.6.1.post1") == (8, 6, 1) and ts.parse_version("10.13.0rc1") == (10, 13, 0)
    assert ts.parse_version("unknown") == ()


def test_cache_dir_handling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ts.prepare_cache_dir(None) == (None, "engine cache disabled (runtime_options.engine_cache is null)")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path, reason = ts.prepare_cache_dir(ts.DEFAULT_ENGINE_CACHE)
    assert reason is None and path == str(tmp_path / "home" / ".cache" / "edge-harness" / "trt-engines")
    assert os.path.isdir(path)
    (tmp_path / "afile").write_text("x")
    path, reason = ts.prepare_cache_dir(str(tmp_path / "afile" / "engines"))
    assert path is None and "cannot be created" in reason and "afile" in reason
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        path, reason = ts.prepare_cache_dir(str(ro))
        assert path is None and reason.endswith("is not writable")
    files = ts.cache_files("/c", "k" * 32, "10.3.0", "Orin sm_87")
    assert files.engine == "/c/" + "k" * 32 + ".engine" and files.meta == "/c/" + "k" * 32 + ".json"
    assert files.timing == ts.cache_files("/c", "other", "10.3.0", "Orin sm_87").timing  # shared per TRT + GPU
    assert files.timing != ts.cache_files("/c", "k" * 32, "10.3.0", "H200 sm_90").timing
    assert ts.calibration_file("/c", "q") == "/c/calib-q.cache"


def test_atomic_write_and_read(tmp_path: Path) -> None:
    target = tmp_path / "e.engine"
    ts.atomic_write(str(target), b"abc")
    ts.atomic_write(str(target), b"defg")
    assert target.read_bytes() == b"defg" and os.listdir(tmp_path) == ["e.engine"]
    assert ts.read_or_none(str(target)) == b"defg"
    assert ts.read_or_none(str(tmp_path / "missing")) is None and ts.read_or_none(None) is None
    (tmp_path / "empty").write_bytes(b"")
    assert ts.read_or_none(str(tmp_path / "empty")) is None


def test_int8_mode(tmp_path: Path) -> None:
    assert ts.int8_mode("fp16", False, None) == (None, None)
    assert ts.int8_mode("int8", True, None) == ("qdq", None)
    with pytest.raises(ArtifactIncompatible, match="needs runtime_options.calibration"):
        ts.int8_mode("int8", False, None)
    with pytest.raises(ArtifactIncompatible, match="calibration set not found on the board"):
        ts.int8_mode("int8", False, str(tmp_path / "nope.npz"))
    calib = lib.make_eval_set(tmp_path / "c.npz", n=8)
    assert ts.int8_mode("int8", False, str(calib)) == ("calibrated", ts.sha256_file(str(calib)))


@pytest.mark.parametrize("compressed", [False, True])
def test_calibration_batches(tmp_path: Path, compressed: bool) -> None:
    x = np.random.RandomState(0).standard_normal((10, 1, 8, 8))  # float64: cast to the input dtype
    path = tmp_path / "calib.npz"
    (np.savez_compressed if compressed else np.savez)(path, x=x, y=np.zeros(10, np.int64))
    batches = trt_calib.CalibrationBatches.from_npz(str(path), (4, 1, 8, 8), np.float32)
    assert len(batches) == 2 and batches.batch_size == 4 and batches.batch_nbytes == 4 * 64 * 4
    got = [batches.next(), batches.next()]
    assert batches.next() is None and batches.fed == 2
    for i, b in enumerate(got):
        assert b.dtype == np.float32 and b.shape == (4, 1, 8, 8) and b.flags.c_contiguous
        np.testing.assert_array_equal(b, x[4 * i:4 * i + 4].astype(np.float32))
    batches.reset()
    np.testing.assert_array_equal(batches.next(), got[0])
    assert len(trt_calib.CalibrationBatches.from_npz(str(path), (4, 1, 8, 8), "float32", max_samples=7)) == 1
    assert trt_calib.read_npz_rows(str(path), "x", 3).shape == (3, 1, 8, 8)  # reads only the rows asked for


def test_calibration_batches_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", x=np.zeros((8, 1, 8, 8), np.float32))
    np.savez(tmp_path / "noxx.npz", y=np.zeros(3))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases = [
        ("ok.npz", (4, 3, 8, 8), None, "per-sample shape [1, 8, 8] but the model input is [4, 3, 8, 8]"),
        ("ok.npz", (16, 1, 8, 8), None, "8 samples, fewer than one batch of 16"),
        ("ok.npz", (4, 1, 8, 8), 3, "3 samples, fewer than one batch of 4"),
        ("noxx.npz", (4, 1, 8, 8), None, "has no array 'x'"),
        ("junk.npz", (4, 1, 8, 8), None, "cannot read calibration set"),
    ]
    for name, shape, limit, needle in cases:
        with pytest.raises(ValueError) as exc:
            trt_calib.CalibrationBatches.from_npz(str(tmp_path / name), shape, np.float32, limit)
        assert needle in str(exc.value), name


# ---------------------------------------------------------------- 3. fakes of TensorRT and CUDA


class FakeCuda(cuda_mem.CudaBackend):
    """Device memory as bytearrays; ``execute_async_v3`` of the fake engine reads them."""

    name = "fake-cuda"
    mem: dict = {}
    top = 0x1000  # the last address handed out, by any instance (a job's and its canary's share the device)

    def __init__(self, device: int = 0):
        if device != 0:
            raise RuntimeError("CUDA cudaSetDevice failed: cudaErrorInvalidDevice")
        self.syncs, self._mine = 0, []

    def device_names(self) -> list:
        return ["Fake GPU"]

    def compute_capability(self) -> str:
        return "sm_87"

    def malloc(self, nbytes: int) -> int:
        FakeCuda.top += 0x10000
        FakeCuda.mem[FakeCuda.top] = bytearray(nbytes)
        self._mine.append(FakeCuda.top)
        return FakeCuda.top

    def free(self, ptr: int) -> None:
        self._mine.remove(ptr)
        del FakeCuda.mem[ptr]

    def h2d(self, ptr: int, arr: np.ndarray) -> None:
        FakeCuda.mem[ptr][: arr.nbytes] = np.ascontiguousarray(arr).tobytes()

    def d2h(self, arr: np.ndarray, ptr: int) -> None:
        arr[...] = np.frombuffer(bytes(FakeCuda.mem[ptr][: arr.nbytes]), arr.dtype).reshape(arr.shape)

    def stream_handle(self) -> int:
        return 7

    def sync(self) -> None:
        self.syncs += 1

    def close(self) -> None:
        for ptr in list(self._mine):
            self.free(ptr)


def fake_tensorrt(version: str = "10.3.0") -> types.ModuleType:
    """The subset of ``tensorrt`` the runtime uses, behaving as documented."""
    import onnx
    from onnx import numpy_helper

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.stats = {"builds": 0, "calibrated_batches": 0, "network_flags": []}

    class ILogger:
        class Severity(enum.IntEnum):
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self) -> None:
            pass

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    ns = types.SimpleNamespace
    trt.ILogger, trt.IInt8EntropyCalibrator2 = ILogger, IInt8EntropyCalibrator2
    trt.NetworkDefinitionCreationFlag = ns(EXPLICIT_BATCH=0)
    trt.LayerType = ns(QUANTIZE="Q", DEQUANTIZE="DQ")
    trt.BuilderFlag = ns(FP16="FP16", INT8="INT8")
    trt.MemoryPoolType = ns(WORKSPACE="WORKSPACE")
    trt.TensorIOMode = ns(INPUT="IN", OUTPUT="OUT")
    trt.nptype = lambda dt: {"FLOAT": np.float32, "INT64": np.int64}[dt]
    trt.profile_shapes = {}  # input name -> the shape the last optimization profile gave it

    class Network:
        def __init__(self) -> None:
            self.inputs, self.outputs, self.layers, self.weights = [], [], [], {}

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, i: int) -> Any:
            return self.inputs[i]

        def get_output(self, i: int) -> Any:
            return self.outputs[i]

        def get_layer(self, i: int) -> Any:
            return self.layers[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: Any) -> None:
            self.network, self.errors = network, []

        def parse_from_file(self, path: str) -> bool:
            try:
                model = onnx.load(path)
            except Exception as exc:
                self.errors.append("ModelImporter: failed to parse: %s" % exc)
                return False
            g, dims = model.graph, lambda v: tuple(d.dim_value or -1 for d in v.type.tensor_type.shape.dim)
            types_ = {onnx.TensorProto.FLOAT: "FLOAT", onnx.TensorProto.INT64: "INT64"}
            self.network.inputs = [ns(name=v.name, shape=dims(v), dtype=types_[v.type.tensor_type.elem_type])
                                   for v in g.input]
            self.network.outputs = [ns(name=v.name, shape=dims(v), dtype="FLOAT") for v in g.output]
            kinds = {"QuantizeLinear": "Q", "DequantizeLinear": "DQ"}
            self.network.layers = [ns(type=kinds.get(n.op_type, n.op_type)) for n in g.node]
            self.network.weights = {t.name: numpy_helper.to_array(t).tolist() for t in g.initializer}
            return True

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i: int) -> str:
            return self.errors[i]

    class Config:
        def __init__(self) -> None:
            self.flags, self.profiles, self.int8_calibrator, self.timing, self.pool = set(), [], None, None, {}

        def set_flag(self, flag: str) -> None:
            self.flags.add(flag)

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            self.pool[pool] = size

        def add_optimization_profile(self, profile: Any) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def set_calibration_profile(self, profile: Any) -> bool:
            return True

        def create_timing_cache(self, data: bytes) -> Any:
            if data and not data.startswith(b"timing"):
                raise RuntimeError("bad timing cache")
            return ns(serialize=lambda: b"timing" + data[6:] + b"+")

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
            self.timing = cache
            return True

        def get_timing_cache(self) -> Any:
            return self.timing

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> Network:
            trt.stats["network_flags"].append(flags)
            return Network()

        create_builder_config = staticmethod(Config)
        @staticmethod
        def create_optimization_profile() -> Any:
            def set_shape(*a: Any) -> None:
                trt.last_profile = a
                trt.profile_shapes[a[0]] = a[1]

            return ns(set_shape=set_shape)

        def build_serialized_network(self, network: Network, config: Config) -> Any:
            trt.stats["builds"] += 1
            inp = network.inputs[0]
            shape = inp.shape
            if any(-1 in i.shape for i in network.inputs):
                if not config.profiles:
                    self.logger.log(ILogger.Severity.ERROR, "Network has dynamic inputs but no profile")
                    return None
                shape = trt.profile_shapes[inp.name]
            cal = config.int8_calibrator
            if "INT8" in config.flags and cal is not None and cal.read_calibration_cache() is None:
                assert cal.get_batch_size() == shape[0]
                while cal.get_batch([inp.name]) is not None:
                    trt.stats["calibrated_batches"] += 1
                cal.write_calibration_cache(b"calibration table")
            engine = {"magic": "fake-engine", "input": inp.name, "dynamic": -1 in inp.shape, "shape": list(shape),
                      "output": network.outputs[0].name, "W": network.weights["W"], "B": network.weights["B"],
                      "flags": sorted(config.flags), "extra": [[i.name, i.dtype] for i in network.inputs[1:]],
                      "ONEHOT": network.weights.get("ONEHOT")}  # extra: an int64 k adds k * ONEHOT (write_two_inputs)
            return memoryview(json.dumps(engine).encode())  # buffer protocol, like IHostMemory

    class Engine:
        def __init__(self, d: dict) -> None:
            self.d = d
            self.names = [d["input"]] + [n for n, _ in d.get("extra", [])] + [d["output"]]
            self.num_io_tensors = len(self.names)

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_mode(self, name: str) -> str:
            return "OUT" if name == self.d["output"] else "IN"

        def get_tensor_dtype(self, name: str) -> str:
            return dict(self.d.get("extra", [])).get(name, "FLOAT")

        def create_execution_context(self) -> Any:
            return Context(self.d)

    class Context:
        def __init__(self, d: dict) -> None:
            self.d, self.addr, self.shapes = d, {}, {}

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            self.shapes[name] = tuple(shape)
            if name != self.d["input"]:
                return name in dict(self.d.get("extra", []))
            return list(shape) == self.d["shape"]

        @property
        def shape(self) -> tuple:
            return self.shapes[self.d["input"]]

        def get_tensor_shape(self, name: str) -> tuple:
            return (self.shape[0], len(self.d["B"])) if name == self.d["output"] else self.shapes[name]

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            assert isinstance(stream, int)
            n = int(np.prod(self.shape))
            x = np.frombuffer(bytes(FakeCuda.mem[self.addr[self.d["input"]]][: n * 4]), np.float32)
            logits = x.reshape(self.shape[0], -1) @ np.array(self.d["W"], np.float32) + np.array(self.d["B"], np.float32)
            for name, _ in self.d.get("extra", []):
                size = int(np.prod(self.shapes[name]))
                k = np.frombuffer(bytes(FakeCuda.mem[self.addr[name]][: size * 8]), np.int64).reshape(self.shapes[name])
                logits = logits + k.astype(np.float32) * np.array(self.d["ONEHOT"], np.float32)
            FakeCuda.mem[self.addr[self.d["output"]]][:] = logits.astype(np.float32).tobytes()
            return True

    class Runtime:
        def __init__(self, logger: Any) -> None:
            pass

        def deserialize_cuda_engine(self, blob: bytes) -> Any:
            try:
                d = json.loads(bytes(blob))
            except ValueError:
                return None
            return Engine(d) if d.get("magic") == "fake-engine" else None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    trt = fake_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda_mem, "load_backend", lambda device=0: FakeCuda(device))
    FakeCuda.mem.clear()
    return trt


def loaded(model: Path, x: np.ndarray, **options: Any) -> TensorRtRuntime:
    rt = TensorRtRuntime(options)
    rt.load(str(model))
    rt.prepare(x)
    return rt


def test_fake_probe_and_old_versions(fake: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    assert TensorRtRuntime.probe() == {"name": "tensorrt", "version": "10.3.0", "available": True, "devices": ["Fake GPU"]}
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("8.4.3"))
    info = TensorRtRuntime.probe()
    assert info["available"] is False and info["version"] == "8.4.3" and "older than 8.5" in info["reason"]

    def no_cuda(device: int = 0) -> Any:
        raise RuntimeError("no usable CUDA binding (cuda-python: ImportError: x; pycuda: ImportError: y)")

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("8.6.1"))
    monkeypatch.setattr(cuda_mem, "load_backend", no_cuda)
    info = TensorRtRuntime.probe()
    assert info["available"] is False and "no usable CUDA binding" in info["reason"] and info["version"] == "8.6.1"


def test_fake_build_run_and_cache_hit(fake: types.ModuleType, tmp_path: Path, assets: dict) -> None:
    cache = tmp_path / "engines"
    x = np.random.RandomState(3).standard_normal(lib.INPUT_SHAPE).astype(np.float32)
    w, b = lib.classifier_weights()
    rt = loaded(assets["model"], x, engine_cache=str(cache))
    np.testing.assert_allclose(rt.run(x), x.reshape(4, -1) @ w + b, rtol=1e-5, atol=1e-5)
    rt.prepare(x)
    rt.infer()
    eff = rt.effective()
    rt.close()
    opts = eff["options"]
    assert eff["precision"] == "f32" and opts["engine_cached"] is False and opts["engine_build_s"] > 0
    assert opts["engine_phase"] == "prepare"  # dynamic batch: built once the spec's shape is known
    assert fake.last_profile == ("x", (4, 1, 8, 8), (4, 1, 8, 8), (4, 1, 8, 8))
    assert opts["tensorrt_version"] == "10.3.0" and opts["device_name"] == "Fake GPU sm_87"
    assert fake.stats["network_flags"] == [0]  # TensorRT 10: no EXPLICIT_BATCH flag
    names = sorted(os.listdir(cache))
    assert names == sorted([opts["engine_key"] + ".engine", opts["engine_key"] + ".json", names[-1]])
    assert names[-1].startswith("timing-") and json.loads((cache / names[1]).read_text())["precision"] == "fp32"
    assert FakeCuda.mem == {}  # close() freed every buffer

    again = loaded(assets["model"], x, engine_cache=str(cache))
    opts2 = again.effective()["options"]
    np.testing.assert_allclose(again.run(x), x.reshape(4, -1) @ w + b, rtol=1e-5, atol=1e-5)
    again.close()
    assert opts2["engine_cached"] is True and opts2["engine_build_s"] == 0.0 and fake.stats["builds"] == 1
    assert opts2["engine_key"] == opts["engine_key"]

    fp16 = loaded(assets["model"], x, engine_cache=str(cache), precision="fp16")
    eff16 = fp16.effective()
    fp16.close()
    assert eff16["precision"] == "f16" and eff16["options"]["engine_cached"] is False and fake.stats["builds"] == 2
    assert eff16["options"]["engine_key"] != opts["engine_key"]
    assert (cache / names[-1]).read_bytes() == b"timing++"  # the timing cache was loaded and saved back

    (cache / (opts["engine_key"] + ".engine")).write_bytes(b"truncated")  # a damaged cache entry is rebuilt
    rebuilt = loaded(assets["model"], x, engine_cache=str(cache))
    assert rebuilt.effective()["options"]["engine_cached"] is False and fake.stats["builds"] == 3
    rebuilt.close()


def test_fake_static_model_builds_in_load_on_trt8(fake: types.ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    import onnx

    trt8 = fake_tensorrt("8.6.1")
    monkeypatch.setitem(sys.modules, "tensorrt", trt8)
    model = onnx.load(str(lib.write_classifier(tmp_path / "m.onnx")))
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 4
    onnx.save(model, str(tmp_path / "static.onnx"))
    rt = TensorRtRuntime({"engine_cache": None})
    rt.load(str(tmp_path / "static.onnx"))
    assert trt8.stats["builds"] == 1 and trt8.stats["network_flags"] == [1]  # 8.x: 1 << EXPLICIT_BATCH
    with pytest.raises(ArtifactIncompatible, match=r"input 'x' has shape \[4, 1, 8, 8\], spec gives \[2, 1, 8, 8\]"):
        rt.prepare(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ArtifactIncompatible, match="expects float32, spec gives float64"):
        rt.prepare(np.zeros((4, 1, 8, 8), np.float64))
    rt.prepare(np.zeros((4, 1, 8, 8), np.float32))
    opts = rt.effective()["options"]
    rt.close()
    assert opts["engine_phase"] == "load" and opts["engine_path"] is None and "disabled" in opts["cache_reason"]


def test_fake_int8_calibration(fake: types.ModuleType, tmp_path: Path, assets: dict) -> None:
    cache = tmp_path / "engines"
    x = np.zeros(lib.INPUT_SHAPE, np.float32)
    with pytest.raises(ArtifactIncompatible, match="needs runtime_options.calibration"):
        loaded(assets["model"], x, precision="int8", engine_cache=str(cache))
    opts = dict(precision="int8", engine_cache=str(cache), calibration=str(assets["eval"]), calibration_samples=40)
    rt = loaded(assets["model"], x, **opts)
    eff = rt.effective()
    rt.close()
    o = eff["options"]
    assert eff["precision"] == "int8" and o["int8_mode"] == "calibrated" and o["fp16_fallback"] is True
    assert o["calibration_batches"] == 10 and fake.stats["calibrated_batches"] == 10  # 40 samples / batch 4
    assert o["calibration_cache_used"] is False
    assert [p for p in os.listdir(cache) if p.startswith("calib-")]
    # Another engine of the same network and data (other workspace) reuses the calibration table.
    rt = loaded(assets["model"], x, workspace_mb=64, **opts)
    o2 = rt.effective()["options"]
    rt.close()
    assert o2["engine_cached"] is False and o2["calibration_cache_used"] is True and o2["calibration_batches"] == 0
    assert FakeCuda.mem == {}  # the calibrator's device buffer was freed


def test_fake_through_the_agent(fake: types.ModuleType, tmp_path: Path, assets: dict) -> None:
    """The agent's whole measure path: facts, load, warm-up, timed loop, accuracy, result."""
    opts = {"engine_cache": str(tmp_path / "engines")}
    spec = lib.make_spec(assets["model"], runtime="tensorrt", runtime_options=opts,
                         eval={"path": str(assets["eval"]), "max_samples": None},
                         measure={"warmup_s": 0.01, "min_s": 0.05})
    results = []
    for name in ("a.json", "b.json"):
        rc, events = measure_in_process(tmp_path, spec, name)
        assert rc == 0, events[-1]
        assert events[0]["runtime"] == {"name": "tensorrt", "version": "10.3.0", "available": True, "devices": ["Fake GPU"]}
        results.append(events[-1])
    first, second = results
    assert first["accuracy"] == 1.0 and first["eval_n"] == 360 and first["precision"] == "f32"
    assert first["threads"] is None and first["latency"]["n"] >= 20
    assert first["runtime"]["options"]["engine_cached"] is False and first["runtime"]["options"]["engine_build_s"] > 0
    assert second["runtime"]["options"]["engine_cached"] is True and second["runtime"]["options"]["engine_build_s"] == 0
    assert second["accuracy"] == 1.0


def test_canary_options_drop_what_belongs_to_the_job_model() -> None:
    """The canary (an fp32 ONNX without Q/DQ scales) cannot be built at int8 without the job's
    calibration set, and that set is not the canary's: it runs at fp16, the int8 engine's fallback."""
    job = {"precision": "int8", "calibration": "/data/c.npz", "workspace_mb": 256}
    canary = open_runtime("tensorrt", job, None, canary=True)
    assert canary.options["precision"] == "fp16" and canary.options["calibration"] is None
    assert canary.options["workspace_mb"] == 256  # what describes the board is shared
    assert open_runtime("tensorrt", job, None).options["precision"] == "int8"  # the job keeps its own
    assert TensorRtRuntime.canary_options({"precision": "fp16"}) == {"precision": "fp16", "calibration": None}
    ort = open_runtime("onnxruntime", {"graph_optimization": "basic"}, 1, canary=True)
    assert ort.options["graph_optimization"] == "basic"


def test_fake_int8_job_with_its_interleaved_canary(fake: types.ModuleType, tmp_path: Path, assets: dict) -> None:
    """An int8 job and its interleaved canary through the agent: the job calibrated at int8, the
    canary (no calibration of its own) built at fp16 instead of failing the job."""
    opts = {"engine_cache": str(tmp_path / "engines"), "precision": "int8", "calibration": str(assets["eval"]),
            "calibration_samples": 8}
    canary = lib.write_classifier(tmp_path / "canary.onnx", seed=1)
    spec = lib.make_spec(assets["model"], runtime="tensorrt", runtime_options=opts, protocol=2,
                         measure={"warmup_s": 0.01, "min_s": 0.05}, canary={
                             "runtime": "tensorrt", "artifact": {"path": str(canary), "format": "onnx", "sha256": None},
                             "input": {"shape": list(lib.INPUT_SHAPE), "dtype": "float32"},
                             "runtime_options": opts, "block_s": 0.01})
    rc, events = measure_in_process(tmp_path, spec)
    assert rc == 0, events[-1]
    res = events[-1]
    assert res["precision"] == "int8" and res["runtime"]["options"]["int8_mode"] == "calibrated"
    assert res["canary"]["precision"] == "f16" and res["canary"]["latency"]["n"] > 0


def test_fake_two_input_network(fake: types.ModuleType, tmp_path: Path) -> None:
    """Both inputs bound by name (one profile sizing each), fed again by ``run_outputs``; int8
    calibration, which feeds one input, is refused for it."""
    model = lib.write_two_inputs(tmp_path / "two.onnx")
    cache = tmp_path / "engines"
    x = np.random.RandomState(3).standard_normal(lib.INPUT_SHAPE).astype(np.float32)
    ones, zeros = np.ones((4, 1), np.int64), np.zeros((4, 1), np.int64)
    w, b = lib.classifier_weights()
    rt = TensorRtRuntime({"engine_cache": str(cache)})
    rt.load(str(model))
    assert rt.input_specs() == [("x", (None, 1, 8, 8), "float32"), ("k", (None, 1), "int64")]
    with pytest.raises(ArtifactIncompatible, match=r"model has 2 inputs \(x, k\); the spec gives one"):
        rt.prepare(x)
    with pytest.raises(ArtifactIncompatible, match=r"input 'k' expects int64, spec gives float32"):
        rt.prepare_feeds({"x": x, "k": ones.astype(np.float32)})
    rt.prepare_feeds({"k": ones, "x": x})
    assert fake.profile_shapes == {"x": (4, 1, 8, 8), "k": (4, 1)}
    rt.infer()
    (name, out), = rt.run_outputs({"x": x, "k": zeros})
    assert name == "logits"
    np.testing.assert_allclose(out, x.reshape(4, -1) @ w + b, rtol=1e-5, atol=1e-5)
    (_, out), = rt.run_outputs({"x": x, "k": ones})
    assert list(out.argmax(axis=1)) == [0, 0, 0, 0]
    opts = rt.effective()["options"]
    rt.close()
    assert FakeCuda.mem == {}
    meta = json.loads((cache / (opts["engine_key"] + ".json")).read_text())
    assert opts["engine_phase"] == "prepare" and meta["profile"] == {"x": [4, 1, 8, 8], "k": [4, 1]}
    calib = lib.make_eval_set(tmp_path / "c.npz", n=8)
    rt = TensorRtRuntime({"engine_cache": None, "precision": "int8", "calibration": str(calib)})
    rt.load(str(model))
    with pytest.raises(ArtifactIncompatible, match="int8 calibration feeds one input .* 2 inputs: give it a Q/DQ ONNX"):
        rt.prepare_feeds({"x": x, "k": ones})
    rt.close()


def test_fake_two_input_network_through_the_agent(fake: types.ModuleType, tmp_path: Path) -> None:
    model = lib.write_two_inputs(tmp_path / "two.onnx")
    ev = lib.make_eval_set(tmp_path / "ev.npz", n=40)
    with np.load(ev) as data:
        y = data["y"]
    np.savez(tmp_path / "ev_k.npz", x=np.load(ev)["x"], y=y, k=np.ones((40, 1), np.int64))
    inputs = [{"name": "x", "shape": list(lib.INPUT_SHAPE), "dtype": "float32"},
              {"name": "k", "shape": [4, 1], "dtype": "int64"}]
    spec = lib.make_spec(model, runtime="tensorrt", protocol=4, inputs=inputs, runtime_options={"engine_cache": None},
                         eval={"path": str(tmp_path / "ev_k.npz"), "max_samples": None},
                         measure={"warmup_s": 0.01, "min_s": 0.05})
    rc, events = measure_in_process(tmp_path, spec)
    assert rc == 0, events[-1]
    res = events[-1]
    assert res["latency"]["n"] >= 20 and res["eval_n"] == 40
    assert res["accuracy"] == pytest.approx(float(np.mean(y == 0))) and res["accuracy"] < 1.0  # every k = 1: class 0


def test_fake_bad_onnx_is_artifact_incompatible(fake: types.ModuleType, tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    rc, events = measure_in_process(tmp_path, lib.make_spec(bad, runtime="tensorrt"))
    assert rc == 1 and events[-1]["kind"] == "ArtifactIncompatible"
    assert "TensorRT's ONNX parser rejected" in events[-1]["message"]


def test_fake_cuda_device_missing_is_runtime_unavailable(fake: types.ModuleType, assets: dict) -> None:
    rt = TensorRtRuntime({"device": 3})
    with pytest.raises(RuntimeUnavailable, match="CUDA device 3 not usable: .*cudaErrorInvalidDevice"):
        rt.load(str(assets["model"]))
    rt.close()


def test_calibrator_binding_feeds_device_buffer(tmp_path: Path) -> None:
    """The IInt8EntropyCalibrator2 subclass against a stand-in base class and fake memory."""
    FakeCuda.mem.clear()
    trt = types.SimpleNamespace(IInt8EntropyCalibrator2=type("Base", (), {"__init__": lambda self: None}))
    x = np.arange(12 * 64, dtype=np.float32).reshape(12, 1, 8, 8)
    batches = trt_calib.CalibrationBatches(x, (4, 1, 8, 8), np.float32)
    cuda = FakeCuda()
    table = tmp_path / "calib.cache"
    cal = trt_calib.make_calibrator(trt, batches, cuda, str(table))
    assert cal.get_batch_size() == 4 and cal.read_calibration_cache() is None
    for i in range(3):
        ptrs = cal.get_batch(["x"])
        assert ptrs is not None and len(ptrs) == 1
        got = np.frombuffer(bytes(FakeCuda.mem[ptrs[0]]), np.float32).reshape(4, 1, 8, 8)
        np.testing.assert_array_equal(got, x[4 * i:4 * i + 4])
    assert cal.get_batch(["x"]) is None
    cal.write_calibration_cache(memoryview(b"table"))
    assert table.read_bytes() == b"table" and cal.read_calibration_cache() == b"table" and cal.cache_used
    cal.free()
    cal.free()  # idempotent
    assert FakeCuda.mem == {}


# ---------------------------------------------------------------- 4. real TensorRT


@pytest.fixture
def real_tensorrt() -> None:
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:
        pytest.skip("TensorRT not importable here: %s" % exc)
    info = TensorRtRuntime.probe()
    if not info["available"]:
        pytest.skip("TensorRT importable but not usable here: %s" % info["reason"])


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_real_engine_build_time_and_cache(real_tensorrt: None, tmp_path: Path, assets: dict, precision: str) -> None:
    opts: dict = {"precision": precision, "engine_cache": str(tmp_path / "engines")}
    if precision == "int8":
        opts["calibration"] = str(assets["eval"])
    spec = lib.make_spec(assets["model"], runtime="tensorrt", runtime_options=opts,
                         eval={"path": str(assets["eval"]), "max_samples": None})
    results = []
    for name in ("first.json", "second.json"):
        rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", str(lib.write_spec(tmp_path, spec, name))],
                                           timeout=600)
        assert rc == 0, stderr[-3000:]
        assert [e["event"] for e in events] == ["facts"] + ["progress"] * 4 + ["result"]
        results.append(events[-1])
    first, second = results
    for res in results:
        lat = res["latency"]
        assert lat["n"] >= 20 and 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["max_ms"]
        assert res["precision"] == {"fp32": "f32", "fp16": "f16", "int8": "int8"}[precision]
        assert res["eval_n"] == 360
        # fp32 and fp16 keep every label (top-2 margin > 1 logit); int8 may lose a few.
        assert res["accuracy"] >= {"fp32": 1.0, "fp16": 0.99, "int8": 0.9}[precision]
    o1, o2 = first["runtime"]["options"], second["runtime"]["options"]
    assert o1["engine_cached"] is False and o1["engine_build_s"] > 0
    assert o2["engine_cached"] is True and o2["engine_build_s"] == 0 and o2["engine_key"] == o1["engine_key"]
    assert os.path.isfile(o1["engine_path"]) and o1["engine_phase"] == "prepare"  # the classifier has a dynamic batch
    if precision == "int8":
        assert o1["int8_mode"] == "calibrated" and o1["calibration_batches"] > 0
