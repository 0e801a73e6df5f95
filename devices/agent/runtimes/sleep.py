"""A test runtime that needs no ML library: each inference waits ``latency_ms``.

It ships in the agent like TVM's ``rpc/testing.py`` helpers ship in TVM, so coordinator
tests can drive a real agent process fast, with known latencies and injected failures.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .base import Runtime

_FAIL_POINTS = (None, "load", "infer")
NUM_CLASSES = 10
_BUSY_WAIT_BELOW_S = 0.002  # time.sleep overshoots by ~0.1 ms; spin for short waits


class SleepRuntime(Runtime):
    """Sleeps (or spins, below 2 ms) for ``latency_ms`` per inference; predicts label 0."""

    name = "sleep"
    precisions = frozenset({"f32", "f16", "bf16", "int8"})
    formats = frozenset({"onnx", "openvino-ir", "tflite"})
    option_defaults: Dict[str, Any] = {"latency_ms": 1.0, "fail_on": None}
    test_only = True

    def __init__(self, options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None):
        super().__init__(options, threads)
        self._latency_s = float(self.options["latency_ms"]) / 1e3
        self._batch = 1
        # What was bound, as ``input_specs`` lists it: the sleep runtime reads no model.
        self._specs = [("x", (None,), "float32")]  # type: List[Tuple[str, Tuple[Optional[int], ...], str]]

    def validate_options(self, options: Dict[str, Any]) -> None:
        lat = options["latency_ms"]
        if isinstance(lat, bool) or not isinstance(lat, (int, float)) or lat < 0:
            raise ValueError("runtime_options.latency_ms must be a number >= 0, got %r" % (lat,))
        if options["fail_on"] not in _FAIL_POINTS:
            raise ValueError("runtime_options.fail_on must be null, 'load' or 'infer'")

    @classmethod
    def probe(cls) -> Dict[str, Any]:
        return {"name": cls.name, "version": "0", "available": True, "devices": ["sleep"]}

    def load(self, path: str, weights: Optional[str] = None) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError("no such model file: %s" % path)
        if self.options["fail_on"] == "load":
            raise RuntimeError("sleep runtime: failing on load as asked (fail_on=load)")

    def prepare(self, x: np.ndarray) -> None:
        self.prepare_feeds({"x": x})

    def prepare_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        """Any inputs: the first one's batch sets the outputs' (a sleep model has no inputs to check)."""
        first = next(iter(feeds.values()))
        self._batch = int(first.shape[0]) if first.ndim else 1
        self._specs = [(name, tuple(int(d) for d in x.shape), x.dtype.name) for name, x in feeds.items()]

    def infer(self) -> None:
        if self.options["fail_on"] == "infer":
            raise RuntimeError("sleep runtime: failing on infer as asked (fail_on=infer)")
        wait = self._latency_s
        if wait >= _BUSY_WAIT_BELOW_S:
            time.sleep(wait)
            return
        end = time.perf_counter() + wait
        while time.perf_counter() < end:
            pass

    def run(self, x: np.ndarray) -> np.ndarray:
        self.infer()
        out = np.zeros((int(x.shape[0]), NUM_CLASSES), dtype=np.float32)
        out[:, 0] = 1.0
        return out

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        return [self.run(x)]

    def input_specs(self) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
        """The inputs last bound (before any: one float input ``x`` of any shape)."""
        return list(self._specs)

    def run_outputs(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[str, np.ndarray]]:
        """One inference; one output of class scores predicting label 0, batch of the first input."""
        first = next(iter(feeds.values()))
        return [("scores", self.run(first if first.ndim else first.reshape(1)))]

    def effective(self) -> Dict[str, Any]:
        return {"threads": self.threads, "precision": "f32", "options": dict(self.options)}
