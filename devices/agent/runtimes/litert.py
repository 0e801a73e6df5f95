"""LiteRT (TensorFlow Lite): one ``Interpreter``, tensors allocated once, input set once.

- Library: ``ai_edge_litert`` (the current wheel), else ``tflite_runtime`` (the older one
  Raspberry Pi images ship); both have the same ``Interpreter``. The result names which.
- Threads and XNNPACK are recorded with every result: XNNPACK is the default delegate and
  changes latency a lot; ``xnnpack: false`` builds the interpreter with the
  ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` op resolver. ai-edge-litert turns
  ``num_threads=None`` into 1 thread (its constructor passes ``int(num_threads or 1)``), so
  ``effective()`` reports 1 there; tflite-runtime leaves None to its C++ default (None).
- Layout comes from the model's own input shape, never guessed: the agent feeds the
  suite's (NCHW) shape, and a TFLite model converted with channel-last inputs wants NHWC.
  Input equal to the model's shape is fed as is, its NHWC transpose fed transposed, anything
  else is ArtifactIncompatible.
- A full-integer model takes int8/uint8 input: the float input is quantized with the
  model's own scale and zero point (rounding as TFLite's QUANTIZE kernel) in ``prepare``,
  outside the timed loop, which then runs ``invoke`` alone; ``run`` dequantizes a
  quantized output for accuracy.
- A model with several inputs is fed by ``prepare_feeds``/``run_outputs``: by the inputs'
  names, or, where none of the spec's names is one of the model's (a converter renames
  them: ``serving_default_a:0``), by position; each input gets its own layout and dtype.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ArtifactIncompatible, RuntimeUnavailable
from .base import Runtime, unavailable

# (module, distribution name reported as "library"), in order of preference.
_LIBRARIES = (("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime"))
_QUANTIZED = ("int8", "uint8", "int16")


def _import_library() -> Tuple[Any, str, Optional[str]]:
    """(interpreter module, library name, version); RuntimeUnavailable naming each failure.

    ``importlib`` rather than ``import`` statements: neither package is a name the agent's
    syntax test knows, and the module name is data here anyway.
    """
    errors: List[str] = []
    for module, library in _LIBRARIES:
        try:
            mod = importlib.import_module(module + ".interpreter")
        except Exception as exc:  # not installed, or installed but broken: try the next one
            errors.append("%s: %s: %s" % (library, type(exc).__name__, exc))
            continue
        return mod, library, _version(module, library)
    raise RuntimeUnavailable("no LiteRT library importable (%s)" % "; ".join(errors))


def _version(module: str, library: str) -> Optional[str]:
    """The package's ``__version__`` (ai_edge_litert has one), else its installed metadata."""
    version = getattr(importlib.import_module(module), "__version__", None)
    if version:
        return str(version)
    try:
        import importlib.metadata as metadata  # 3.8+

        return metadata.version(library)
    except Exception:
        return None


class LiteRtRuntime(Runtime):
    """LiteRT ``Interpreter`` on the CPU, with or without the default XNNPACK delegate."""

    name = "litert"
    precisions = frozenset({"f32", "f16", "int8"})
    formats = frozenset({"tflite"})
    option_defaults: Dict[str, Any] = {"xnnpack": True}

    def __init__(self, options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None):
        super().__init__(options, threads)
        self._interp: Any = None
        self._library: Optional[str] = None
        self._op_resolver = "AUTO" if self.options["xnnpack"] else "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
        self._in: Dict[str, Any] = {}  # the first input's details
        self._ins: List[Dict[str, Any]] = []  # every input's
        self._out: Dict[str, Any] = {}
        self._layout: Optional[str] = None

    def validate_options(self, options: Dict[str, Any]) -> None:
        if not isinstance(options["xnnpack"], bool):
            raise ValueError("runtime_options.xnnpack must be true or false, got %r" % (options["xnnpack"],))

    @classmethod
    def probe(cls) -> Dict[str, Any]:
        try:
            _, library, version = _import_library()
            return {"name": cls.name, "version": version, "available": True, "devices": ["CPU"], "library": library}
        except Exception as exc:  # a broken install must not crash the probe
            return unavailable(cls.name, exc)

    def load(self, path: str, weights: Optional[str] = None) -> None:
        mod, self._library, _ = _import_library()
        kwargs: Dict[str, Any] = {"model_path": path, "num_threads": self.request_threads()}
        if not self.options["xnnpack"]:
            resolver = getattr(mod, "OpResolverType", None)
            if resolver is None:
                raise RuntimeUnavailable("this %s has no OpResolverType: cannot turn XNNPACK off" % self._library)
            kwargs["experimental_op_resolver_type"] = getattr(resolver, self._op_resolver)
        interp = mod.Interpreter(**kwargs)
        interp.allocate_tensors()
        self._interp = interp
        self._details()
        self._layout = None

    def _details(self) -> None:
        self._ins = self._interp.get_input_details()
        self._in = self._ins[0]
        self._out = self._interp.get_output_details()[0]

    def prepare(self, x: np.ndarray) -> None:
        if len(self._ins) != 1:
            raise ArtifactIncompatible("model has %d inputs (%s); the spec gives one" % (
                len(self._ins), ", ".join(str(d["name"]) for d in self._ins)))
        self._set([(0, x)])

    def prepare_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        self._set(self._bind(feeds))

    def infer(self) -> None:
        self._interp.invoke()

    def infer_fn(self) -> Callable[[], Any]:
        return self._interp.invoke

    def run(self, x: np.ndarray) -> np.ndarray:
        # Same interpreter; it overwrites the input, so prepare() must be called again to time.
        self._set([(0, x)])
        self._interp.invoke()
        return _dequantized(np.array(self._interp.get_tensor(self._out["index"])), self._out)

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        # Every output in the interpreter's order, each dequantized as ``run`` does.
        self._set([(0, x)])
        self._interp.invoke()
        return [_dequantized(np.array(self._interp.get_tensor(d["index"])), d)
                for d in self._interp.get_output_details()]

    def input_specs(self) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
        # Fed as the boards feed them: float data in the suite's layout, converted and
        # quantized by ``_set``.
        out = []
        for det in self._ins:
            want = np.dtype(det["dtype"])
            dtype = "float32" if want.name in _QUANTIZED or want == np.float16 else want.name
            sig = det.get("shape_signature", det["shape"])
            out.append((str(det["name"]), tuple(int(d) if d > 0 else None for d in sig), dtype))
        return out

    def run_outputs(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[str, np.ndarray]]:
        # Same interpreter; it overwrites the inputs, so prepare() must be called again to time.
        self._set(self._bind(feeds))
        self._interp.invoke()
        return [(str(d["name"]), _dequantized(np.array(self._interp.get_tensor(d["index"])), d))
                for d in self._interp.get_output_details()]

    def _bind(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[int, np.ndarray]]:
        """(input position, data) for every input: by name, else (no name known) by position."""
        names = [str(d["name"]) for d in self._ins]
        if sorted(feeds) == sorted(names):
            return [(names.index(n), x) for n, x in feeds.items()]
        if len(feeds) == len(names) and not set(feeds) & set(names):
            return list(enumerate(feeds.values()))
        raise ArtifactIncompatible("model inputs are %s; the spec gives %s" % (names, list(feeds)))

    def _set(self, arrays: List[Tuple[int, np.ndarray]]) -> None:
        """Set each input (by position) in the model's layout and dtype; dynamic dimensions are
        sized first, as sizing reallocates every tensor."""
        fed = [(pos, self._fit(pos, x)) for pos, x in arrays]
        for pos, x in fed:
            self._interp.set_tensor(self._ins[pos]["index"], np.ascontiguousarray(self._cast(x, self._ins[pos])))

    def _fit(self, pos: int, x: np.ndarray) -> np.ndarray:
        """``x`` in input ``pos``'s layout, resizing its dynamic dims once."""
        det = self._ins[pos]
        sig = det.get("shape_signature", det["shape"])
        try:
            layout = feed_layout(sig, x.shape)
        except ArtifactIncompatible as exc:
            raise ArtifactIncompatible("%s (input %r)" % (exc, det["name"])) from None
        if pos == 0:
            self._layout = layout
        fed = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
        if [int(d) for d in det["shape"]] != list(fed.shape):  # dynamic dims (-1): size them
            self._interp.resize_tensor_input(det["index"], list(fed.shape))
            self._interp.allocate_tensors()
            self._details()
        return fed

    def _cast(self, x: np.ndarray, det: Dict[str, Any]) -> np.ndarray:
        want = np.dtype(det["dtype"])
        if x.dtype == want:
            return x
        quant = _quantization(det)
        if want.name in _QUANTIZED and quant is not None and np.issubdtype(x.dtype, np.floating):
            info = np.iinfo(want)
            q = _round_half_away(np.asarray(x, np.float32) / np.float32(quant["scale"])) + quant["zero_point"]
            return np.clip(q, info.min, info.max).astype(want)
        if want == np.float16 and np.issubdtype(x.dtype, np.floating):
            return x.astype(np.float16)
        raise ArtifactIncompatible("model input %r expects %s%s, spec gives %s" % (
            det["name"], want.name, "" if quant is None else " (quantized)", x.dtype))

    def effective(self) -> Dict[str, Any]:
        threads = self.threads
        if threads is None and self._library == "ai-edge-litert":
            threads = 1  # its Interpreter passes int(num_threads or 1) to the C++ side
        options: Dict[str, Any] = {
            "xnnpack": self.options["xnnpack"],
            "num_threads": self.request_threads(),
            "op_resolver": self._op_resolver,
            "library": self._library,
            "layout": self._layout,
            "input_dtype": np.dtype(self._in["dtype"]).name if self._in else None,
            "input_quantization": _quantization(self._in) if self._in else None,
            "output_quantization": _quantization(self._out) if self._out else None,
            "xnnpack_applied": self._delegated(),
        }
        return {"threads": threads, "precision": "as-model", "options": options}

    def _delegated(self) -> Optional[bool]:
        """Whether a delegate (XNNPACK: the only default one) took nodes; None if unknown."""
        try:
            return any(op.get("op_name") == "DELEGATE" for op in self._interp._get_ops_details())
        except Exception:  # private API; older tflite_runtime lacks it
            return None

    def close(self) -> None:
        self._interp = None


def feed_layout(model_shape: Sequence[int], x_shape: Sequence[int]) -> str:
    """How NCHW data of ``x_shape`` goes into a model input of ``model_shape`` (-1: dynamic).

    "NCHW" (or "as-given" below 4-D) when the shapes match, "NHWC" when the model takes the
    channel-last transpose; ArtifactIncompatible naming both shapes otherwise. Equal shapes
    win, so a square C == H == W input is fed as is.
    """
    sig = [int(d) for d in model_shape]
    shape = tuple(int(d) for d in x_shape)
    if _fits(sig, shape):
        return "NCHW" if len(shape) == 4 else "as-given"
    nhwc = (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else None
    if nhwc is not None and _fits(sig, nhwc):
        return "NHWC"
    raise ArtifactIncompatible("model input has shape %s; the spec gives %s%s"
                               % (sig, list(shape), "" if nhwc is None else " (NHWC %s)" % list(nhwc)))


def _fits(signature: List[int], shape: Tuple[int, ...]) -> bool:
    """Shape matches the model's signature; -1 there is a dynamic dimension."""
    return len(signature) == len(shape) and all(d in (-1, s) for d, s in zip(signature, shape))


def _quantization(details: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Per-tensor ``{"scale", "zero_point"}`` of a tensor, or None when it is not quantized."""
    scales = (details.get("quantization_parameters") or {}).get("scales", ())
    if len(scales) > 1:
        raise ArtifactIncompatible("tensor %r is quantized per axis; the agent feeds and reads per-tensor "
                                   "quantized inputs and outputs only" % details.get("name"))
    scale, zero_point = details.get("quantization", (0.0, 0))
    if not scale:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point)}


def _dequantized(out: np.ndarray, details: Dict[str, Any]) -> np.ndarray:
    """An output as float when the tensor is quantized (per tensor), else as it is."""
    quant = _quantization(details)
    if quant is None or out.dtype.name not in _QUANTIZED:
        return out
    return (out.astype(np.float32) - np.float32(quant["zero_point"])) * np.float32(quant["scale"])


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """Rounding as TFLite's own QUANTIZE kernel does it (std::round: halves away from zero)."""
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
