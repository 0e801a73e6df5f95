"""The power sampler: a thread (tegrastats: its process) running during one window only.

It must not perturb the latency it sits beside: it sleeps on an Event between samples
(no busy loop), does one read and one list append per sample, and computes nothing until
``stop``. Timestamps are ``time.monotonic_ns`` (the board's clock). ``start`` and ``stop``
each take one reading synchronously, so the samples bracket the window exactly.

Energy over the window, by the source's kind:
- "energy" (RAPL, NVML, a joule meter): sum of wrap-safe counter deltas between
  consecutive readings (exact; polling only keeps wraps apart and gives the peak).
- "power": trapezoid of the timestamped samples over [start, stop], the first and last
  values held to the edges (docs/measurement.md, trap 6: integrate over a window much longer
  than the period).
- "stream" (tegrastats): the mean of its fixed-interval samples times the window, since a
  pipe may deliver lines in bursts and their arrival times are not sample times.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .base import Source, describe

DEFAULT_PERIOD_S = 0.05
JOIN_TIMEOUT_S = 5.0


def trapezoid(samples: List[Tuple[int, float]], start_ns: int, stop_ns: int) -> Optional[float]:
    """Joules of piecewise-linear watts over [start_ns, stop_ns], edges held constant."""
    pts = sorted(samples)
    if not pts or stop_ns <= start_ns:
        return None
    ts = [start_ns] + [t for t, _ in pts if start_ns < t < stop_ns] + [stop_ns]
    vs = [_at(pts, t) for t in ts]
    return sum((vs[i] + vs[i + 1]) * (ts[i + 1] - ts[i]) for i in range(len(ts) - 1)) / 2e9


def _at(pts: List[Tuple[int, float]], t: int) -> float:
    if t <= pts[0][0]:
        return pts[0][1]
    for (t0, v0), (t1, v1) in zip(pts, pts[1:]):
        if t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return pts[-1][1]


class Sampler:
    """Samples ``source`` every ``period_s`` between ``start()`` and ``stop()``."""

    def __init__(self, source: Source, period_s: float = DEFAULT_PERIOD_S,
                 clock: Callable[[], int] = time.monotonic_ns):
        self.source = source
        self.period_s = max(period_s, source.min_period_ms / 1e3)
        self._clock = clock
        self._samples: List[Tuple[int, Any]] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._stream: Any = None
        self._errors = 0
        self._first_error: Optional[str] = None
        self._start_ns = self._stop_ns = 0

    def _take(self) -> None:
        t0 = self._clock()
        try:
            value = self.source.read()
        except Exception as exc:  # a flaky sensor loses one sample, never the job
            self._error(exc)
            return
        self._samples.append(((t0 + self._clock()) // 2, value))

    def _error(self, exc: BaseException) -> None:
        self._errors += 1
        if self._first_error is None:
            self._first_error = describe(exc)

    def _poll(self) -> None:
        period = int(self.period_s * 1e9)
        due = self._clock() + period
        while not self._stop.wait(max(0.0, (due - self._clock()) / 1e9)):
            self._take()
            due += period
            now = self._clock()
            if due < now:  # a slow read: skip the missed slots instead of bursting
                due = now + period

    def _read_stream(self) -> None:
        parse = self.source.parse  # type: ignore[attr-defined]
        try:
            for line in self._stream.lines:
                t = self._clock()
                if self._stop.is_set():
                    break
                try:
                    watts = parse(line)
                except Exception as exc:
                    self._error(exc)
                    continue
                if watts is not None:
                    self._samples.append((t, watts))
        except Exception as exc:  # the pipe closed under us at stop
            if not self._stop.is_set():
                self._error(exc)

    def start(self) -> None:
        if self.source.kind == "stream":
            self._stream = self.source.open_stream(self.period_s * 1e3)  # type: ignore[attr-defined]
            target = self._read_stream
        else:
            self._take()
            target = self._poll
        self._thread = threading.Thread(target=target, name="telemetry-sampler", daemon=True)
        self._thread.start()  # returns once the thread runs: on a loaded board that can take a while
        self._start_ns = self._clock()  # so the window starts here, right before the caller's loop

    def stop(self) -> Dict[str, Any]:
        """End the window and summarise it; never raises."""
        self._stop_ns = self._clock()
        self._stop.set()
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception as exc:
                self._error(exc)
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        if self.source.kind != "stream":
            self._take()
        try:
            return self.summary()
        except Exception as exc:
            self._error(exc)
            return self._result(None, None, None)

    def summary(self) -> Dict[str, Any]:
        span_s = (self._stop_ns - self._start_ns) / 1e9
        samples = list(self._samples)
        kind = self.source.kind
        if kind == "energy":
            if len(samples) < 2:
                return self._result(None, None, None)
            energy = 0.0
            peak: Optional[float] = None
            for (t0, r0), (t1, r1) in zip(samples, samples[1:]):
                joules = self.source.delta(r0, r1)
                energy += joules
                if t1 - t0 >= self.period_s * 0.5e9:  # shorter edge intervals are mostly counter granularity
                    watts = joules / ((t1 - t0) / 1e9)
                    peak = watts if peak is None else max(peak, watts)
            counted_s = (samples[-1][0] - samples[0][0]) / 1e9
            if counted_s <= 0:
                return self._result(None, None, None)
            avg = energy / counted_s  # the readings bracket the window by a read each side: scale to it
            return self._result(avg * span_s, avg, peak)
        values = [float(v) for _, v in samples]
        if not values:
            return self._result(None, None, None)
        if kind == "stream":
            avg = sum(values) / len(values)
            return self._result(avg * span_s, avg, max(values))
        energy_j = trapezoid([(t, float(v)) for t, v in samples], self._start_ns, self._stop_ns)
        avg = energy_j / span_s if energy_j is not None and span_s > 0 else None
        return self._result(energy_j, avg, max(values))

    def _result(self, energy_j: Optional[float], avg_w: Optional[float], peak_w: Optional[float]) -> Dict[str, Any]:
        out = {
            "source": self.source.name,
            "kind": self.source.kind,
            "energy_j": energy_j,
            "avg_power_w": avg_w,
            "peak_power_w": peak_w,
            "n_samples": len(self._samples),
            "span_s": (self._stop_ns - self._start_ns) / 1e9,
            "period_ms": self.period_s * 1e3,
            "read_errors": self._errors,
        }  # type: Dict[str, Any]
        if self._first_error is not None:
            out["first_error"] = self._first_error
        if energy_j is None:
            out["reason"] = "no usable samples" + (" (%s)" % self._first_error if self._first_error else "")
        return out


def measure_for(source: Source, seconds: float, period_s: float = DEFAULT_PERIOD_S,
                sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """A sampler over ``seconds`` of this thread sleeping: the idle baseline."""
    sampler = Sampler(source, period_s)
    sampler.start()
    try:
        sleep(seconds)
    finally:
        result = sampler.stop()
    return result
