"""ONNX Runtime: ``InferenceSession.run`` on a feed dict built once.

``infer`` is the very call a bare ``session.run`` benchmark makes, so the agent adds no
overhead over it. ORT executes the graph's own types, so precision is reported "as-model".
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import ArtifactIncompatible, RuntimeUnavailable
from .base import Runtime, unavailable
from .parallel import Parallel, ThreadPool

# ORT's GraphOptimizationLevel members; "all" is ORT's own default.
_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# ORT input type strings -> numpy dtypes, to reject a wrong input dtype before timing.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OnnxRuntime(Runtime):
    """ONNX Runtime InferenceSession with a chosen provider list and optimization level."""

    name = "onnxruntime"
    precisions = frozenset({"f32", "f16", "int8"})
    option_defaults: Dict[str, Any] = {"providers": ["CPUExecutionProvider"], "graph_optimization": "all"}

    def __init__(self, options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None):
        super().__init__(options, threads)
        self._sess: Any = None
        self._feed: Dict[str, np.ndarray] = {}
        self._out_names: List[str] = []

    def validate_options(self, options: Dict[str, Any]) -> None:
        providers = options["providers"]
        if not isinstance(providers, list) or not providers or not all(isinstance(p, str) for p in providers):
            raise ValueError("runtime_options.providers must be a non-empty list of strings")
        if options["graph_optimization"] not in _OPT_LEVELS:
            raise ValueError(
                "runtime_options.graph_optimization must be one of %s" % ", ".join(sorted(_OPT_LEVELS))
            )

    @classmethod
    def probe(cls) -> Dict[str, Any]:
        try:
            import onnxruntime as ort

            return {
                "name": cls.name,
                "version": ort.__version__,
                "available": True,
                "devices": list(ort.get_available_providers()),
            }
        except Exception as exc:  # a broken install must not crash the probe
            return unavailable(cls.name, exc)

    def load(self, path: str, weights: Optional[str] = None) -> None:
        import onnxruntime as ort

        missing = [p for p in self.options["providers"] if p not in ort.get_available_providers()]
        if missing:
            raise RuntimeUnavailable(
                "onnxruntime providers %s are not available here (available: %s)"
                % (missing, ort.get_available_providers())
            )
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPT_LEVELS[self.options["graph_optimization"]]
        )
        intra = self.request_threads(os.cpu_count())  # with requests in flight, the cores split over them
        if intra is not None:
            so.intra_op_num_threads = intra
        self._sess = ort.InferenceSession(path, so, providers=list(self.options["providers"]))
        self._out_names = [o.name for o in self._sess.get_outputs()]

    def prepare(self, x: np.ndarray) -> None:
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ArtifactIncompatible("model has %d inputs (%s); the spec gives one" % (
                len(inputs), ", ".join(i.name for i in inputs)))
        meta = inputs[0]
        _check_input(meta.name, meta.type, meta.shape, x)
        self._feed = {meta.name: x}

    def prepare_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        metas = self._sess.get_inputs()
        _check_names([m.name for m in metas], feeds)
        for meta in metas:
            _check_input(meta.name, meta.type, meta.shape, feeds[meta.name])
        self._feed = {meta.name: feeds[meta.name] for meta in metas}

    def infer(self) -> None:
        self._sess.run(self._out_names, self._feed)

    def optimal_inflight(self) -> int:
        """One request per thread of the budget (``threads``, else a core each), each on one intra-op thread."""
        return self.threads or os.cpu_count() or 1

    def parallel(self, n: int, clone: Callable[[], Runtime]) -> Parallel:
        """``n`` threads calling ``run`` on this one session: thread-safe, and it releases the GIL."""
        return ThreadPool([self.infer] * n)

    def run(self, x: np.ndarray) -> np.ndarray:
        name = self._sess.get_inputs()[0].name
        return self._sess.run(self._out_names[:1], {name: x})[0]

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        name = self._sess.get_inputs()[0].name
        return [np.asarray(o) for o in self._sess.run(self._out_names, {name: x})]

    def input_specs(self) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
        return [(i.name, tuple(d if isinstance(d, int) and d > 0 else None for d in i.shape),
                 _ORT_TYPES.get(i.type, "float32")) for i in self._sess.get_inputs()]

    def run_outputs(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[str, np.ndarray]]:
        outs = self._sess.run(self._out_names, feeds)
        return [(name, np.asarray(o)) for name, o in zip(self._out_names, outs)]

    def effective(self) -> Dict[str, Any]:
        providers = self._sess.get_providers() if self._sess is not None else self.options["providers"]
        return {
            # ORT cannot report its default pool size; None means "ORT default" (one per core).
            "threads": self.threads,
            "precision": "as-model",
            "options": {
                "providers": list(providers),
                "graph_optimization": self.options["graph_optimization"],
                "intra_op_num_threads": self.request_threads(os.cpu_count()),
            },
        }

    def close(self) -> None:
        self._sess = None
        self._feed = {}


def _check_names(names: List[str], feeds: Dict[str, np.ndarray]) -> None:
    """ArtifactIncompatible unless ``feeds`` names exactly the model's inputs."""
    if sorted(names) != sorted(feeds):
        raise ArtifactIncompatible("model inputs are %s; the spec gives %s" % (names, list(feeds)))


def _check_input(name: str, type_str: str, shape: List[Any], x: np.ndarray) -> None:
    """Fail as ArtifactIncompatible (not a timing error) when the spec's input cannot fit."""
    want = _ORT_TYPES.get(type_str)
    if want is not None and np.dtype(want) != x.dtype:
        raise ArtifactIncompatible("input %r expects %s, spec gives %s" % (name, want, x.dtype))
    if len(shape) != x.ndim or any(
        isinstance(d, int) and d > 0 and d != s for d, s in zip(shape, x.shape)
    ):
        raise ArtifactIncompatible("input %r has shape %s, spec gives %s" % (name, shape, list(x.shape)))
