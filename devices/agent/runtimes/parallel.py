"""Requests in flight on one loaded model: the runtimes' parallel-inference API.

The scenarios other than single-stream (``scenarios/``) drive a ``Parallel``:

- ``submit(done)`` starts one inference of the bound input and returns; it blocks while
  ``size`` requests are already in flight. ``done(start_ns, end_ns)`` is called from any
  thread when that inference ends: ``perf_counter_ns`` stamps of when it began running (a
  worker took it) and when it finished.
- ``drain()`` waits until every submitted request has finished and raises the first
  failure; ``close()`` stops the pool (idempotent).

``ThreadPool`` is the default (``Runtime.parallel``): one Python thread per request in
flight, each calling its own zero-argument inference callable. ONNX Runtime gives every
thread the same ``session.run`` (thread-safe, and it releases the GIL while it runs);
LiteRT, TensorRT and the sleep runtime give each thread its own instance (an interpreter,
an engine with its context and stream, a sleeper). OpenVINO brings its own
(``openvino.py``: an ``AsyncInferQueue``, as benchmark_app's throughput mode, whose requests'
ends are stamped from OpenVINO's own measured latency).

The hand-off costs one queue put and get per request (about 10-30 us of Python on a
2-core x86 VM), outside the stamps a request's latency is measured between.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

Done = Callable[[int, int], None]


class Parallel(object):
    """``size`` requests in flight; see the module docstring."""

    size = 0
    kind = ""

    def submit(self, done: Done) -> None:
        raise NotImplementedError

    def drain(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the pool; the default holds nothing."""

    def describe(self) -> Dict[str, Any]:
        """What the result says about the pool: its kind and size (and what the runtime chose)."""
        return {"kind": self.kind, "requests": self.size}


class ThreadPool(Parallel):
    """One worker thread per callable; ``closers`` run at ``close`` (the clones' ``close``)."""

    kind = "threads"

    def __init__(self, fns: Sequence[Callable[[], Any]], closers: Sequence[Callable[[], None]] = ()):
        if not fns:
            raise ValueError("a pool needs at least one inference callable")
        self.size = len(fns)
        self.error: Optional[BaseException] = None
        self._queue: Any = queue.SimpleQueue()
        self._slots = threading.Semaphore(self.size)
        self._closers = list(closers)
        self._threads: List[threading.Thread] = [
            threading.Thread(target=self._work, args=(fn,), name="infer-%d" % i, daemon=True) for i, fn in enumerate(fns)]
        for t in self._threads:
            t.start()

    def _work(self, fn: Callable[[], Any]) -> None:
        get, clock, release = self._queue.get, time.perf_counter_ns, self._slots.release
        while True:
            done = get()
            if done is None:
                return
            t0 = clock()
            try:
                fn()
            except BaseException as exc:  # kept for drain(); the worker goes on, the slot is freed
                if self.error is None:
                    self.error = exc
            t1 = clock()
            try:
                done(t0, t1)
            finally:
                release()

    def submit(self, done: Done) -> None:
        if self.error is not None:
            raise self.error
        self._slots.acquire()
        self._queue.put(done)

    def drain(self) -> None:
        for _ in range(self.size):  # every slot free: nothing in flight
            self._slots.acquire()
        for _ in range(self.size):
            self._slots.release()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for t in threads:
            t.join(timeout=60)
        closers, self._closers = self._closers, []
        for close in closers:
            close()
