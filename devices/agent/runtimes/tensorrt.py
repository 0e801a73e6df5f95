"""TensorRT: build an engine from the ONNX artifact on the board, or load it from the
board's engine cache; time ``execute_async_v3`` + stream synchronization.

API: the name-based tensor API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) of TensorRT 10 (JetPack 6.1+, x86 wheels) and 8.5/8.6 (JetPack 5.1:
8.5.2, JetPack 6.0: 8.6.2). The binding-index API (``execute_v2``), removed in 10, is not
used, so TensorRT < 8.5 probes as unavailable. Networks are explicit batch (flag passed on
8.x). Device memory and the stream: cuda-python, else pycuda (``cuda_mem.py``).

``infer`` = one ``execute_async_v3`` on a private stream + ``cudaStreamSynchronize``: the
end-to-end GPU time of one inference; the inputs are copied once in ``prepare`` /
``prepare_feeds`` (every input of a multi-input network, by name; like trtexec
``--noDataTransfers``). ``run`` copies in and out, for accuracy; ``run_outputs`` feeds
every input.

Engines are cached under ``engine_cache`` (default ~/.cache/edge-harness/trt-engines) by a
hash of ONNX bytes, TensorRT version, GPU name + compute capability, precision and the
options that change the engine; ``engine_build_s`` (0.0 when cached) and ``engine_cached``
go into the result's runtime options. A timing cache there speeds up rebuilds.

``precision``: fp32 | fp16 | int8 (+ fp16 fallback, like trtexec ``--int8 --fp16``),
calibrated by an entropy calibrator on ``calibration`` (an npz with ``x``) or, for a Q/DQ
ONNX, explicit. The flags allow lower precision; TensorRT picks each layer's. Reported as
f32 / f16 / int8. An ONNX with a dynamic input dimension is built in ``prepare`` (``load``
does not get the spec's shape) with one profile min = opt = max = the spec's shapes
(``engine_phase`` says which). int8 calibration feeds one input (the npz's ``x``): a
multi-input network at int8 needs a Q/DQ ONNX. Untested on real TensorRT unless a GPU box ran
tests/devices/agent/test_agent_tensorrt.py; its logic is tested with a fake ``tensorrt``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ArtifactIncompatible, RuntimeUnavailable
from . import cuda_mem
from . import trt_calib
from . import trt_support as ts
from .base import Runtime

log = logging.getLogger("edge_harness.agent.tensorrt")

MIN_VERSION = (8, 5)
_PRECISIONS = ("fp32", "fp16", "int8")
_REPORTED = {"fp32": "f32", "fp16": "f16", "int8": "int8"}  # the agent's precision spelling


class TensorRtRuntime(Runtime):
    """A TensorRT engine built from ONNX on one CUDA device, with a private stream."""

    name = "tensorrt"
    precisions = frozenset({"f32", "f16", "int8"})
    option_defaults: Dict[str, Any] = {
        "precision": "fp32",
        "workspace_mb": None,  # None: TensorRT's default (the device's memory)
        "timing_cache": True,
        "engine_cache": ts.DEFAULT_ENGINE_CACHE,  # null: build every time, cache nothing
        "calibration": None,  # int8: path of an npz with x on the board
        "calibration_samples": 512,  # about what NVIDIA suggests for ImageNet-size calibration
        "device": 0,
    }

    def __init__(self, options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None):
        super().__init__(options, threads)
        # TensorRT objects; (builder, network, parser) live in _parts until the engine exists.
        self._trt = self._cuda = self._logger = self._parts = None  # type: Any
        self._runtime = self._engine = self._context = self._exec = None  # type: Any
        self._version = None  # type: Optional[str]
        self._device = self._onnx_sha = ""  # device: GPU name + compute capability (cache key)
        self._inputs = []  # type: List[Tuple[str, Tuple[int, ...], Any]]  # name, network shape, dtype
        self._qdq = False
        self._out_order = []  # type: List[str]
        self._handle = 0
        self._in_ptrs = {}  # type: Dict[str, int]
        self._in_shapes = {}  # type: Dict[str, Tuple[int, ...]]
        self._outs = []  # type: List[Tuple[str, int, np.ndarray]]
        self._info = {"engine_build_s": None, "engine_cached": None}  # type: Dict[str, Any]

    @classmethod
    def canary_options(cls, options: Dict[str, Any]) -> Dict[str, Any]:
        """int8 is the job's model's (its Q/DQ scales or calibration set): the canary, an fp32
        ONNX without either, runs at fp16, the int8 engine's fallback precision, on the same
        tensor cores; the job's calibration set is not the canary's."""
        out = dict(options, calibration=None)
        if out.get("precision") == "int8":
            out["precision"] = "fp16"
        return out

    def validate_options(self, options: Dict[str, Any]) -> None:
        ts.check_options(options, _PRECISIONS)

    @classmethod
    def probe(cls) -> Dict[str, Any]:
        return ts.probe(MIN_VERSION)

    def engine_key(self, onnx_sha256: str, trt_version: str, device: str,
                   profile_shape: Union[Sequence[int], Dict[str, Sequence[int]], None],
                   calibration_sha256: Optional[str]) -> str:
        """The cache key from the options that change the engine, and nothing else
        (``profile_shape``: the one input's, or ``{name: shape}`` of a multi-input network)."""
        o = self.options
        profile = None  # type: Any
        if isinstance(profile_shape, dict):
            profile = {n: [int(d) for d in shape] for n, shape in profile_shape.items()}
        elif profile_shape is not None:
            profile = [int(d) for d in profile_shape]
        settings: Dict[str, Any] = {"workspace_mb": o["workspace_mb"], "profile": profile}
        if o["precision"] == "int8":
            settings["calibration"] = calibration_sha256
            settings["calibration_samples"] = o["calibration_samples"] if calibration_sha256 else None
        return ts.engine_cache_key(onnx_sha256, trt_version, device, o["precision"], settings)

    def load(self, path: str, weights: Optional[str] = None) -> None:
        import tensorrt as trt

        version = str(trt.__version__)
        if ts.parse_version(version) < MIN_VERSION:
            raise RuntimeUnavailable("TensorRT %s is older than 8.5" % version)
        try:
            self._cuda = cuda_mem.load_backend(self.options["device"])
            name = self._cuda.device_names()[self.options["device"]]
            self._device = "%s %s" % (name, self._cuda.compute_capability())
        except Exception as exc:
            raise RuntimeUnavailable("tensorrt: CUDA device %d not usable: %s" % (self.options["device"], exc)) from None
        self._trt, self._version = trt, version
        self._logger = ts.make_logger(trt, log)
        self._onnx_sha = ts.sha256_file(path)
        builder = trt.Builder(self._logger)
        explicit = trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH if ts.parse_version(version)[0] < 10 else None
        network = builder.create_network(0 if explicit is None else 1 << int(explicit))
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(path):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise ArtifactIncompatible("TensorRT's ONNX parser rejected %s: %s" % (path, "; ".join(errors) or "no detail"))
        self._inputs = [(inp.name, tuple(int(d) for d in inp.shape), np.dtype(trt.nptype(inp.dtype)))
                        for inp in (network.get_input(i) for i in range(network.num_inputs))]
        self._out_order = [network.get_output(i).name for i in range(network.num_outputs)]
        qdq = (trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE)
        self._qdq = any(network.get_layer(i).type in qdq for i in range(network.num_layers))
        self._parts = (builder, network, parser)
        self._runtime = trt.Runtime(self._logger)
        if all(d >= 0 for _, shape, _ in self._inputs for d in shape):
            self._build_or_load({n: shape for n, shape, _ in self._inputs}, dynamic=False, phase="load")

    def _build_or_load(self, shapes: Dict[str, Tuple[int, ...]], dynamic: bool, phase: str) -> None:
        o = self.options
        int8_mode, calib_sha = ts.int8_mode(o["precision"], self._qdq, o["calibration"])
        if int8_mode == "calibrated" and len(self._inputs) > 1:
            raise ArtifactIncompatible("int8 calibration feeds one input (the calibration set's x); this network has "
                                       "%d inputs: give it a Q/DQ ONNX" % len(self._inputs))
        version = self._version or ""
        shape = shapes[self._inputs[0][0]]  # the one input's: the calibration's, the single-input cache key's
        profile = (shapes if len(shapes) > 1 else shape) if dynamic else None
        key = self.engine_key(self._onnx_sha, version, self._device, profile, calib_sha)
        cache_dir, reason = ts.prepare_cache_dir(o["engine_cache"])
        files = ts.cache_files(cache_dir, key, version, self._device) if cache_dir else None
        engine, build_s, info = None, 0.0, {}  # type: Any, float, Dict[str, Any]
        blob = ts.read_or_none(files.engine if files else None)
        if blob is not None:
            engine = self._runtime.deserialize_cuda_engine(blob)
            if engine is None:
                log.warning("cached engine %s did not deserialize; rebuilding it", files.engine if files else "")
        cached = engine is not None
        if engine is None:
            calibrator = None
            if int8_mode == "calibrated":
                batches = trt_calib.CalibrationBatches.from_npz(o["calibration"], shape, self._inputs[0][2],
                                                                o["calibration_samples"])
                table = None
                if cache_dir is not None:
                    ckey = ts.calibration_cache_key(self._onnx_sha, version, calib_sha or "", o["calibration_samples"], shape)
                    table = ts.calibration_file(cache_dir, ckey)
                calibrator = trt_calib.make_calibrator(self._trt, batches, self._cuda, table)
            builder, network, _ = self._parts
            t0 = time.perf_counter()
            try:
                blob = ts.build_engine(self._trt, builder, network, self._logger, o["precision"], o["workspace_mb"],
                                       list(shapes.items()) if dynamic else None,
                                       files.timing if files is not None and o["timing_cache"] else None, calibrator)
            finally:
                if calibrator is not None:
                    info = {"calibration_batches": calibrator.batches.fed, "calibration_cache_used": calibrator.cache_used}
                    calibrator.free()
            build_s = time.perf_counter() - t0
            engine = self._runtime.deserialize_cuda_engine(blob)
            if engine is None:
                raise ArtifactIncompatible("TensorRT built an engine it cannot deserialize")
            if files is not None:
                meta = {"key": key, "onnx_sha256": self._onnx_sha, "tensorrt": version, "device": self._device,
                        "precision": o["precision"], "workspace_mb": o["workspace_mb"], "int8_mode": int8_mode,
                        "profile": profile, "build_s": build_s}
                reason = ts.store_engine(files, blob, meta) or reason
        self._engine, self._parts = engine, None  # the builder and network are no longer needed
        self._info = dict(info, engine_build_s=build_s, engine_cached=cached, engine_key=key, engine_phase=phase,
                          engine_path=files.engine if files else None, int8_mode=int8_mode, cache_reason=reason)

    def prepare(self, x: np.ndarray) -> None:
        if len(self._inputs) != 1:
            raise ArtifactIncompatible("model has %d inputs (%s); the spec gives one" % (
                len(self._inputs), ", ".join(n for n, _, _ in self._inputs)))
        self.prepare_feeds({self._inputs[0][0]: x})

    def prepare_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        if sorted(feeds) != sorted(n for n, _, _ in self._inputs):
            raise ArtifactIncompatible("model inputs are %s; the spec gives %s" % (
                [n for n, _, _ in self._inputs], list(feeds)))
        for name, net_shape, dtype in self._inputs:
            x = feeds[name]
            if len(net_shape) != x.ndim or any(d >= 0 and d != s for d, s in zip(net_shape, x.shape)):
                raise ArtifactIncompatible("input %r has shape %s, spec gives %s" % (
                    name, list(net_shape), list(x.shape)))
            if dtype != x.dtype:
                raise ArtifactIncompatible("input %r expects %s, spec gives %s" % (name, dtype, x.dtype))
        if self._engine is None:
            self._build_or_load({n: tuple(int(d) for d in feeds[n].shape) for n, _, _ in self._inputs}, dynamic=True,
                                phase="prepare")
        self._free_buffers()
        if self._context is None:
            self._context = self._engine.create_execution_context()
        ctx, engine = self._context, self._engine
        for name, _, _ in self._inputs:
            x = feeds[name]
            if not ctx.set_input_shape(name, tuple(x.shape)):
                raise ArtifactIncompatible("TensorRT rejected input shape %s for %r" % (list(x.shape), name))
            self._in_ptrs[name] = self._cuda.malloc(x.nbytes)
            self._in_shapes[name] = tuple(x.shape)
            ctx.set_tensor_address(name, self._in_ptrs[name])
        self._outs = ts.bind_outputs(self._trt, engine, ctx, self._cuda, self._out_order)
        for name, ptr in self._in_ptrs.items():
            self._cuda.h2d(ptr, np.ascontiguousarray(feeds[name]))
        self._handle = self._cuda.stream_handle()
        self._exec = ctx.execute_async_v3

    def infer(self) -> None:
        if not self._exec(self._handle):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        self._cuda.sync()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_all(x, 1)[0]

    def run_all(self, x: np.ndarray, n: Optional[int] = None) -> List[np.ndarray]:
        name = self._inputs[0][0]  # the first input; the others keep what was bound
        if tuple(x.shape) != self._in_shapes.get(name):  # it rebinds the input buffer: prepare() again before timing
            raise ValueError("the engine is bound to input shape %s, got %s" % (
                list(self._in_shapes.get(name, ())), list(x.shape)))
        self._cuda.h2d(self._in_ptrs[name], np.ascontiguousarray(x, dtype=self._inputs[0][2]))
        self.infer()
        return [self._cuda.fetch(host, ptr) for _, ptr, host in self._outs[:n]]  # in the ONNX's order (``prepare``)

    def input_specs(self) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
        return [(n, tuple(d if d >= 0 else None for d in shape), dt.name) for n, shape, dt in self._inputs]

    def run_outputs(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[str, np.ndarray]]:
        # Copies every input in; shapes other than the bound ones bind anew (prepare() again before timing).
        if self._exec is None or any(tuple(x.shape) != self._in_shapes.get(n) for n, x in feeds.items()):
            self.prepare_feeds(feeds)
        else:
            for name, _, dtype in self._inputs:
                self._cuda.h2d(self._in_ptrs[name], np.ascontiguousarray(feeds[name], dtype=dtype))
        self.infer()
        return [(name, self._cuda.fetch(host, ptr)) for name, ptr, host in self._outs]

    def effective(self) -> Dict[str, Any]:
        options = dict(self.options, **self._info)
        options.update(tensorrt_version=self._version, device_name=self._device, cuda_binding=getattr(self._cuda, "name", None),
                       fp16_fallback=self.options["precision"] == "int8")
        # threads: TensorRT has no CPU thread setting. The result keeps threads, precision and options.
        return dict(self._info, threads=None, precision=_REPORTED[self.options["precision"]], options=options)

    def _free_buffers(self) -> None:
        if self._cuda is not None:
            for ptr in list(self._in_ptrs.values()) + [o[1] for o in self._outs]:
                if ptr:
                    self._cuda.free(ptr)
        self._in_ptrs, self._in_shapes, self._outs = {}, {}, []

    def close(self) -> None:
        self._exec = None
        self._free_buffers()
        self._context = self._engine = self._parts = self._runtime = None  # context before engine before runtime
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
        self._logger = None
