"""Scenarios: how a job loads the board while it is timed (docs/measurement.md, "Scenarios and
axes"). One class per module, one table here, like the runtimes' registry:

- ``single-stream`` (default): one request at a time; ``measure.py``'s own loops.
- ``offline``: ``inflight`` requests always in flight; throughput (``p99_bound_ms``: the
  most throughput under that p99, searched for).
- ``multi-stream``: queries of ``samples_per_query`` parallel requests; latency per query.
- ``paced``: arrivals at ``rate_hz`` (uniform or poisson); latency from the scheduled
  arrival, and whether the board kept up.

A new scenario is a ``Scenario`` subclass (``base.py``) in its own module, a row in
``SCENARIOS``, and its keys in ``measurespec.LATER_KEYS`` when it reads new ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from ..errors import ProtocolError
from ..measurespec import LATER_KEYS, MeasureSettings
from ..stats import unstable_reason
from .base import Scenario
from .multistream import MultiStream
from .offline import Offline
from .paced import ARRIVALS, Paced
from .singlestream import SingleStream

if TYPE_CHECKING:
    from ..loops import Deadline
    from ..runtimes.base import Runtime
    from ..spec import JobSpec

SCENARIOS = {cls.name: cls for cls in (SingleStream, Offline, MultiStream, Paced)}  # type: Dict[str, Any]
DEFAULT = "single-stream"
MAX_INFLIGHT = 1024
MAX_RATE_HZ = 1e6
_DEFAULTS = MeasureSettings()

__all__ = ["SCENARIOS", "Scenario", "check_scenario", "close_scenario", "open_scenario", "prepare_scenario",
           "scenario_record"]


def check_scenario(ms: MeasureSettings) -> Optional[str]:
    """Why ``ms``'s operating point cannot run, as "key ...: reason" (the caller prefixes its
    section), or None. Both sides read it: the agent's spec parser and the suite's loader."""
    cls = SCENARIOS.get(ms.scenario)
    if cls is None:
        return "scenario must be one of %s, got %r" % (", ".join(SCENARIOS), ms.scenario)
    for key in LATER_KEYS:
        if key != "scenario" and getattr(ms, key) != getattr(_DEFAULTS, key) and key not in cls.keys:
            users = [name for name, c in SCENARIOS.items() if key in c.keys]
            return "%s is not read by scenario %s (it is for: %s)" % (key, ms.scenario, ", ".join(users))
    if ms.inflight is not None and not 1 <= ms.inflight <= MAX_INFLIGHT:
        return "inflight must be in [1, %d] or null, got %r" % (MAX_INFLIGHT, ms.inflight)
    if not 1 <= ms.samples_per_query <= MAX_INFLIGHT:
        return "samples_per_query must be in [1, %d], got %r" % (MAX_INFLIGHT, ms.samples_per_query)
    if ms.rate_hz is not None and not 0 < ms.rate_hz <= MAX_RATE_HZ:
        return "rate_hz must be in (0, %g] or null, got %r" % (MAX_RATE_HZ, ms.rate_hz)
    if ms.p99_bound_ms is not None and not 0 < ms.p99_bound_ms <= 86400e3:
        return "p99_bound_ms must be > 0 (and at most a day) or null, got %r" % ms.p99_bound_ms
    if ms.arrivals not in ARRIVALS:
        return "arrivals must be one of %s, got %r" % (", ".join(ARRIVALS), ms.arrivals)
    if cls.parallel and ms.target is not None:
        return "target: the percentile target stops single-stream windows only (scenario %s)" % ms.scenario
    return cls.check(ms)


def open_scenario(spec: "JobSpec", runtime: "Runtime") -> Optional[Scenario]:
    """The job's scenario, planned on its runtime before the load; None for single-stream."""
    cls = SCENARIOS[spec.measure.scenario]
    if not cls.parallel:
        return None
    if spec.canary is not None:
        raise ProtocolError("spec key canary: the interleaved canary runs beside single-stream jobs only "
                            "(measure.scenario is %s)" % spec.measure.scenario)
    scenario = cls(spec, runtime)
    scenario.plan()
    return scenario


def prepare_scenario(scenario: Optional[Scenario], deadline: "Deadline", on_phase: Callable[[str], None]) -> None:
    """After the job's warm-up: the scenario's pool (and the offline search), or nothing."""
    if scenario is not None:
        on_phase("search" if scenario.ms.p99_bound_ms is not None else "warmup")
        scenario.prepare(deadline)


def close_scenario(scenario: Optional[Scenario]) -> None:
    if scenario is not None:
        scenario.close()


def scenario_record(spec: "JobSpec", scenario: Optional[Scenario], result: Dict[str, Any]) -> None:
    """The result's ``scenario``: name, batch, requests in flight, resolution (H x W of a 4-D
    input), and what the scenario reports. With a scenario, throughput counts its inferences
    (batch included), and ``unstable`` keeps pyperf's rules only: queueing spreads the latencies
    of requests in flight by design, so the single-stream CV rule does not apply (and a paced
    window's latencies follow its arrivals: ``kept_up`` says what there is to say)."""
    shape = spec.input.shape
    record = {"name": spec.measure.scenario, "batch": int(shape[0]), "inflight": 1,
              "resolution": "%dx%d" % (shape[2], shape[3]) if len(shape) == 4 else None}  # type: Dict[str, Any]
    if scenario is not None:
        latency = result["latency"]
        window_s = latency.get("window_s") or 0.0
        latency["throughput_ips"] = scenario.inferences / window_s if window_s > 0 else None
        result["unstable"] = unstable_reason(dict(latency, cv=None), result["samples_ns"]) if scenario.steady else None
        record.update(scenario.record, inflight=scenario.inflight)
    result["scenario"] = record
