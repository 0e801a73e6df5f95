"""The contract every runtime implements, so every runtime is measured the same way.

The runtime only loads and infers; warm-up, timing and stop rules live in ``measure.py``,
like optimum-benchmark's inference scenario wraps every backend in the same trackers.
``probe`` imports its library lazily and never raises, following optimum-benchmark's
``import_utils.py``: a Raspberry Pi without OpenVINO still imports this package.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from ..errors import ArtifactIncompatible
from .parallel import Parallel, ThreadPool


class Runtime(abc.ABC):
    """One inference engine on this board.

    Lifecycle: ``__init__`` (validate options, import nothing) -> ``load`` -> ``prepare``
    (one input) or ``prepare_feeds`` (every input, by name) -> ``infer`` many times -> ``run``
    (first output) or ``run_all`` (every output) for the eval set, ``run_outputs`` (every
    input fed by name) for a multi-input model's -> ``close``.

    Class attributes:
        name: key in ``RUNTIMES`` and in specs.
        precisions: precisions (OpenVINO spelling: f32, f16, bf16, int8) this runtime can
            execute, so the planner can drop impossible pairs before reaching a board.
        option_defaults: every accepted ``runtime_options`` key with its default.
        test_only: hidden from a default ``probe`` (like TVM's ``rpc/testing.py`` helpers).
    """

    name: str = ""
    precisions: FrozenSet[str] = frozenset()
    formats: FrozenSet[str] = frozenset({"onnx"})  # artifact formats ``load`` reads
    option_defaults: Dict[str, Any] = {}
    test_only: bool = False

    def __init__(self, options: Optional[Dict[str, Any]] = None, threads: Optional[int] = None):
        """Validate ``options`` (unknown key or bad value -> ValueError naming it)."""
        merged = dict(self.option_defaults)
        for key, value in (options or {}).items():
            if key not in merged:
                known = ", ".join(sorted(self.option_defaults)) or "none"
                raise ValueError(
                    "unknown runtime_options key %r for runtime %r (known: %s)" % (key, self.name, known)
                )
            merged[key] = value
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError("threads must be a positive integer or null, got %r" % (threads,))
        self.options: Dict[str, Any] = merged
        self.threads = threads
        self.planned = None  # type: Optional[Tuple[Optional[int]]]  # (requests in flight,) once plan_parallel ran
        self.validate_options(merged)

    def validate_options(self, options: Dict[str, Any]) -> None:
        """Check option values (types, enums); raise ValueError naming the key."""

    def check_format(self, fmt: Optional[str], role: str = "") -> None:
        """ArtifactIncompatible unless ``load`` reads ``fmt`` (None: onnx); ``role`` prefixes the message."""
        if (fmt or "onnx") not in self.formats:
            raise ArtifactIncompatible("%s%s cannot read %s artifacts (it reads: %s)" % (
                role + ": " if role else "", self.name, fmt or "onnx", ", ".join(sorted(self.formats))))

    @classmethod
    def canary_options(cls, options: Dict[str, Any]) -> Dict[str, Any]:
        """The options the board canary (an fp32 ONNX model) runs with beside a job that has
        ``options``: the job's own, so that it shares the job's execution mode; a runtime
        whose options describe the job's model rather than the board overrides this."""
        return dict(options)

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> Dict[str, Any]:
        """``{"name", "version", "available", "devices"}`` (+ ``"reason"`` when not available).

        Imports the library lazily and never raises.
        """

    @abc.abstractmethod
    def load(self, path: str, weights: Optional[str] = None) -> None:
        """Read and compile the model (``weights``: its separate weights file, for formats
        that have one); raises the runtime's own error on a bad file."""

    @abc.abstractmethod
    def prepare(self, x: np.ndarray) -> None:
        """Bind ``x`` as the input once, so ``infer`` does no per-call setup."""

    def prepare_feeds(self, feeds: Dict[str, np.ndarray]) -> None:
        """Bind every input of the model once, by name (``{name: data}``, in the model's order),
        so ``infer`` does no per-call setup; ArtifactIncompatible when the names, shapes or
        dtypes do not fit the model. The default serves runtimes that feed one input."""
        if len(feeds) != 1:
            raise ArtifactIncompatible("%s feeds one input; the spec gives %d (%s)" % (
                self.name, len(feeds), ", ".join(feeds)))
        self.prepare(next(iter(feeds.values())))

    @abc.abstractmethod
    def infer(self) -> None:
        """Exactly one synchronous inference of the prepared input; no timing inside."""

    def infer_fn(self) -> Callable[[], Any]:
        """The zero-argument callable the timed loop calls; same work as ``infer``.

        A runtime may return its library's own bound call (OpenVINO: ``request.infer``) so
        the loop pays no extra Python frame. (For ORT, a ``functools.partial`` of
        ``sess.run`` measured ~40 ns slower than the plain method, so ORT keeps ``infer``.)
        """
        return self.infer

    @abc.abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference of ``x`` returning the first output (used for accuracy)."""

    def run_all(self, x: np.ndarray) -> List[np.ndarray]:
        """One inference of ``x`` returning every output, in the model's output order (task
        metrics: a detector's boxes and scores may be separate outputs). A runtime that
        rebinds its input here needs ``prepare`` again before timing, as with ``run``.
        The default serves runtimes with one output."""
        return [self.run(x)]

    def input_specs(self) -> List[Tuple[str, Tuple[Optional[int], ...], str]]:
        """Every input of the loaded model, in its order: ``(name, shape, dtype)``, a dynamic
        dimension as None and the dtype as the numpy name this runtime accepts. The host's
        fidelity check feeds every input of a multi-input model with it."""
        raise NotImplementedError("runtime %r cannot list a model's inputs" % self.name)

    def run_outputs(self, feeds: Dict[str, np.ndarray]) -> List[Tuple[str, np.ndarray]]:
        """One inference feeding every input by name (``input_specs``' names); every output as
        ``(name, array)`` in the model's order. For the host's fidelity check and a multi-input
        model's eval pass on the board (``inputs.py``); it may rebind the inputs, so
        ``prepare_feeds`` again before timing."""
        raise NotImplementedError("runtime %r cannot return every output" % self.name)

    def plan_parallel(self, n: Optional[int]) -> None:
        """Called before ``load`` when the job keeps several requests in flight (``scenarios/``):
        ``n`` of them, or None when the count is the runtime's choice or is searched for. A
        runtime that sizes threads or streams when it loads reads it there (``request_threads``)."""
        self.planned = (n,)

    def request_threads(self, total: Optional[int] = None) -> Optional[int]:
        """Threads one request may use: ``threads`` when requests run one at a time (as before);
        with requests in flight, ``threads`` (else ``total``) split evenly over the planned count,
        at least 1, and 1 when the count is open: more would oversubscribe the cores."""
        if self.planned is None:
            return self.threads
        budget = self.threads if self.threads is not None else total
        n = self.planned[0]
        return budget if budget is None else 1 if n is None else max(1, budget // n)

    def optimal_inflight(self) -> int:
        """Requests in flight when the suite names none: the runtime's own optimum where it has
        one (OpenVINO's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``), else 2."""
        return 2

    def parallel(self, n: int, clone: Callable[[], "Runtime"]) -> Parallel:
        """``n`` requests in flight on the loaded, bound model (``runtimes/parallel.py``). The
        default runs this instance and ``n - 1`` clones (``clone()``: another instance of this
        runtime, loaded and bound to the same input) on a thread each."""
        clones = [clone() for _ in range(n - 1)]
        return ThreadPool([self.infer_fn()] + [c.infer_fn() for c in clones], [c.close for c in clones])

    @abc.abstractmethod
    def effective(self) -> Dict[str, Any]:
        """``{"threads", "precision", "options"}`` as the runtime actually applied them."""

    def close(self) -> None:
        """Release the session; the default drops nothing."""


def unavailable(name: str, exc: BaseException) -> Dict[str, Any]:
    """Probe answer for a runtime whose import (or device query) failed."""
    return {
        "name": name,
        "version": None,
        "available": False,
        "devices": [],
        "reason": "%s: %s" % (type(exc).__name__, exc),
    }
