"""OpenVINO: one compiled model, one infer request created once, input tensor set once.

OpenVINO on a CPU with AMX/AVX512-BF16 silently runs in bf16 by default (OpenVINO's docs of
``INFERENCE_PRECISION_HINT``), so the precision hint is a setting, and ``effective()`` reads
the precision actually used back from the compiled model; latency and accuracy then run on
that same compiled model.
``PERFORMANCE_HINT: LATENCY`` matches benchmark_app's sync latency mode; with requests in
flight (``plan_parallel``) it is ``THROUGHPUT``, sized for them when the suite names a count, and
``parallel`` is an ``AsyncInferQueue``, as benchmark_app's ``-hint throughput``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np

from ..errors import ArtifactIncompatible, RuntimeUnavailable
from .base import Runtime, unavailable
from .parallel import Parallel

_PRECISIONS = ("f32", "bf16", "f16")


class OpenVinoRuntime(Runtime):
    """OpenVINO ``Core.compile_model`` on one device (CPU by default)."""

    name = "openvino"
    precisions = frozenset({"f32", "f16", "bf16", "int8"})
    formats = frozenset({"onnx", "openvino-ir"})
    option_defaults: Dict[str, Any] = {"inference_precision": None, "device": "CPU"}

    def __init__(self, options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None):
        super().__init__(options, threads)
        self._compiled: Any = None
        self._request: Any = None
        self._tensors: List[Any] = []
        # The model's own input and output names, read before compiling (a compiled port may carry
        # the names of tensors fused into it), and every name of each input.
        self._names: Tuple[List[str], List[str]] = ([], [])
        self._in_names: List[Set[str]] = []

    def validate_options(self, options: Dict[str, Any]) -> None:
        prec = options["inference_precision"]
        if prec is not None and prec not in _PRECISIONS:
            raise ValueError(
                "runtime_options.inference_precision must be one of %s or null, got %r"
                % (", ".join(_PRECISIONS), prec)
            )
        if not isinstance(options["device"], str) or not options["device"]:
            raise ValueError("runtime_options.device must be a device name such as 'CPU'")

    @classmethod
    def probe(cls) -> Dict[str, Any]:
        try:
            import openvino as ov

            return {
                "name": cls.name,
                "version": ov.get_version(),
                "available": True,
                "devices": list(ov.Core().available_devices),
            }
        except Exception as exc:  # a broken install must not crash the probe
            return unavailable(cls.name, exc)

    def config(self) -> Dict[str, Any]:
        """The compile_model config this runtime's options and threads translate to."""
        cfg: Dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY" if self.planned is None else "THROUGHPUT"}
        if self.planned is not None and self.planned[0] is not None:
            cfg["PERFORMANCE_HINT_NUM_REQUESTS"] = self.planned[0]  # streams sized for the requests in flight
        if self.threads is not None:
            cfg["INFERENCE_NUM_THREADS"] = self.threads
        if self.options["inference_precision"] is not None:
            cfg["INFERENCE_PRECISION_HINT"] = self.options["inference_precision"]
        return cfg

    def load(self, path: str, weights: Optional[str] = None) -> None:
        import openvino as ov

        core = ov.Core()
        device = self.options["device"]
        if device not in core.available_devices:
            raise RuntimeUnavailable(
                "OpenVINO device %r is not available here (available: %s)" % (device, core.available_devices)
            )
        model = core.read_model(path, weights) if weights else core.read_model(path)
        self._names = ([_port_name(p, "input_%d" % i) for i, p in enumerate(model.inputs)],
                       [_port_name(p, "output_%d" % i) for i, p in enumerate(model.outputs)])
        self._in_names = [set(p.get_names()) | {self._names[0][i]} for i, p in enumerate(model.inputs)]
        self._compiled = core.compile_model(model, device, self.config())
        self._request = self._compiled.create_infer_request()

    def prepare(self, x: np.ndarray) -> None:
        import openvino as ov

        if len(self._names[0]) != 1:
            raise ArtifactIncompatible("model has %d inputs (%s); the spec gives one" % (
                len(self._names[0]), ", ".join(self._names[0])))
        self._tensors = [ov.Tensor(np.ascontiguousarray(x))]
        self._request.set_input_tensor(self._tensors[0])

    def prepare_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        import openvino as ov

        specs = self.input_specs()
        self._tensors = []
        for i, x in sorted(self._positions(feeds).items()):
            name, shape, dtype = specs[i]
            if np.dtype(dtype) != x.dtype:
                raise ArtifactIncompatible("input %r expects %s, spec gives %s" % (name, dtype, x.dtype))
            if len(shape) != x.ndim or any(d is not None and d != s for d, s in zip(shape, x.shape)):
                raise ArtifactIncompatible("input %r has shape %s, spec gives %s" % (
                    name, ["?" if d is None else d for d in shape], list(x.shape)))
            self._tensors.append(ov.Tensor(np.ascontiguousarray(x)))
            self._request.set_input_tensor(i, self._tensors[-1])

    def _positions(self, feeds: Dict[str, np.ndarray]) -> Dict[int, np.ndarray]:
        """``feeds`` by input position: each name is one of an input's names, every input fed once."""
        wrong = ArtifactIncompatible("model inputs are %s; the spec gives %s" % (self._names[0], list(feeds)))
        out = {}  # type: Dict[int, np.ndarray]
        for name, x in feeds.items():
            i = next((i for i, names in enumerate(self._in_names) if name in names), None)
            if i is None or i in out:
                raise wrong
            out[i] = x
        if len(out) != len(self._in_names):
            raise wrong
        return out

    def infer(self) -> None:
        self._request.infer()

    def infer_fn(self) -> Callable[[], Any]:
        return self._request.infer

    def optimal_inflight(self) -> int:
        """The compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` (what benchmark_app uses)."""
        value = self._property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        return max(1, int(value)) if value is not None else 2

    def parallel(self, n: int, clone: Callable[[], Runtime]) -> Parallel:
        """``n`` requests of an ``AsyncInferQueue`` on this compiled model, bound to the same input."""
        return _AsyncPool(self._compiled, n, self._tensors, self._property("NUM_STREAMS"))

    def run(self, x: np.ndarray) -> np.ndarray:
        # The same request; it rebinds the input, so prepare() must be called again to time.
        return np.array(self._request.infer({0: x})[0])

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        # The same request; it rebinds the input, so prepare() must be called again to time.
        results = self._request.infer({0: x})
        return [np.array(results[port]) for port in self._compiled.outputs]  # the model's output order

    def input_specs(self) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
        return [(self._names[0][i], tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape()),
                 port.get_element_type().to_dtype().name) for i, port in enumerate(self._compiled.inputs)]

    def run_outputs(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[str, np.ndarray]]:
        # The same request; it rebinds the inputs, so prepare() must be called again to time.
        result = self._request.infer(self._positions(feeds))
        return [(self._names[1][i], np.array(result[port])) for i, port in enumerate(self._compiled.outputs)]

    def effective(self) -> Dict[str, Any]:
        options: Dict[str, Any] = dict(self.options)
        threads = self.threads
        precision: Optional[str] = self.options["inference_precision"]
        if self._compiled is not None:
            used = self._property("INFERENCE_PRECISION_HINT")
            precision = _type_name(used) if used is not None else precision
            n_threads = self._property("INFERENCE_NUM_THREADS")
            threads = int(n_threads) if n_threads is not None else threads
            for key in ("PERFORMANCE_HINT", "NUM_STREAMS"):
                value = self._property(key)
                options[key.lower()] = None if value is None else str(value)
            options["inference_precision_used"] = precision
        return {"threads": threads, "precision": precision, "options": options}

    def _property(self, key: str) -> Any:
        """A compiled-model property, or None where the device does not have it (GPU, NPU)."""
        try:
            return self._compiled.get_property(key)
        except Exception:
            return None

    def close(self) -> None:
        self._request = None
        self._compiled = None
        self._tensors = []


class _AsyncPool(Parallel):
    """OpenVINO's ``AsyncInferQueue``, with its own (C++) completion callbacks only: a Python
    callback would run on OpenVINO's threads and need the GIL, and a compiled model destroyed
    while one of them still waits for it hangs the process. ``submit`` waits for an idle request,
    stamps the start and starts it; a request's end is its start plus the latency OpenVINO
    measured for it (``InferRequest.latency``, what benchmark_app reports), read when the request
    is next idle or at ``drain``."""

    kind = "async-infer-queue"

    def __init__(self, compiled: Any, n: int, tensors: List[Any], streams: Any):
        import openvino as ov

        self.size, self._streams = n, streams
        self._queue = ov.AsyncInferQueue(compiled, n)
        self._started: Dict[int, Tuple[Callable[[int, int], None], int]] = {}
        for i in range(n):
            for j, tensor in enumerate(tensors):
                self._queue[i].set_input_tensor(j, tensor)

    def _finished(self, i: int) -> None:
        done, t0 = self._started.pop(i)
        done(t0, t0 + int(self._queue[i].latency * 1e6))

    def submit(self, done: Callable[[int, int], None]) -> None:
        i = self._queue.get_idle_request_id()  # waits for a request to be free; start_async takes that one
        if i in self._started:
            self._finished(i)
        self._started[i] = (done, time.perf_counter_ns())
        self._queue.start_async()

    def drain(self) -> None:
        self._queue.wait_all()
        for i in list(self._started):
            self._finished(i)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.wait_all()
            self._queue = None

    def describe(self) -> Dict[str, Any]:
        return {"kind": self.kind, "requests": self.size, "streams": None if self._streams is None else str(self._streams)}


def _type_name(value: Any) -> str:
    """OpenVINO element type -> short name ("bf16", "f32"); other values -> str()."""
    get = getattr(value, "get_type_name", None)
    return str(get()) if callable(get) else str(value)


def _port_name(port: Any, default: str) -> str:
    """A model port's tensor name (the ONNX graph's; the first in order when it has several), or
    ``default`` for an unnamed one."""
    names = sorted(port.get_names())
    return str(names[0]) if names else default
