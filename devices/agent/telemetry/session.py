"""One job's telemetry, in the order ``measure.run_job`` needs it.

``before_job`` (cooldown, idle baseline, RAM before load) -> ``start_window`` (state
snapshot, sampler on) -> the timed loop -> ``stop_window`` (sampler off, snapshot) ->
``fields`` (the result keys). Every step catches its own failures and keeps them as
reason strings: a broken sensor never fails a job.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Dict, List, Optional

from . import pick_power, state_sources
from .base import Runner, Source, describe
from .cooldown import cool_down, target_c
from .sampler import Sampler, measure_for
from .settings import TelemetrySettings

log = logging.getLogger("edge_harness.agent")


class JobTelemetry:
    """Power sampling, state snapshots and cooldown of one job."""

    def __init__(self, settings: TelemetrySettings, root: str = "/", runner: Optional[Runner] = None,
                 path: Optional[str] = None, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.errors: List[str] = []
        self._sleep = sleep
        p = settings.power
        picked = self._guard("power source", lambda: pick_power(
            p.source, root, runner, {"command": p.command, "unit": p.unit}, path), (None, None, []))
        self.power: Optional[Source] = picked[0]
        self.power_reason: Optional[str] = picked[1] or (None if picked[0] else "power source probe failed")
        self.probes: List[Dict[str, Any]] = picked[2]
        self.states: List[Source] = self._guard("state sources", lambda: state_sources(root, runner, path), [])
        self.cooldown: Dict[str, Any] = {"cooldown_s": 0.0, "timed_out": False, "reason": "not run"}
        self.idle: Optional[Dict[str, Any]] = None
        self.window: Optional[Dict[str, Any]] = None
        self.before: Dict[str, Any] = {}
        self.after: Dict[str, Any] = {}
        self.ram_before_mb: Optional[float] = None
        self._sampler: Optional[Sampler] = None

    def _guard(self, what: str, fn: Callable[[], Any], default: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            self.errors.append("%s: %s" % (what, describe(exc)))
            log.warning("telemetry %s failed: %s", what, describe(exc))
            return default

    @property
    def period_s(self) -> float:
        return self.settings.sample_ms / 1e3

    @property
    def cooldown_target_c(self) -> Optional[float]:
        c = self.settings.cooldown
        return target_c(c.max_temp_c, c.idle_temp_c, c.delta_c)

    def hottest_c(self) -> Optional[float]:
        """The hottest temperature any state source reports now."""
        temps = []
        for source in self.states:
            if source.name in ("thermal", "pi"):
                temp = self._guard(source.name, lambda s=source: s.snapshot().get("temp_c"), None)
                if temp is not None:
                    temps.append(temp)
        return max(temps) if temps else None

    def before_job(self, max_wait_cap_s: Optional[float] = None) -> None:
        """Cooldown, then the idle baseline, then system RAM in use before the model loads."""
        c = self.settings.cooldown
        wait = c.max_wait_s if max_wait_cap_s is None else max(0.0, min(c.max_wait_s, max_wait_cap_s))
        self.cooldown = self._guard("cooldown", lambda: cool_down(self.hottest_c, self.cooldown_target_c, wait,
                                                                  sleep=self._sleep), self.cooldown)
        if wait < c.max_wait_s and self.cooldown_target_c is not None:
            self.cooldown["max_wait_s_capped_to"] = round(wait, 3)  # the job's timeout left no more
        if self.power is not None and self.settings.idle_s > 0:
            power = self.power
            self.idle = self._guard("idle baseline", lambda: measure_for(
                power, self.settings.idle_s, self.period_s, sleep=self._sleep), None)
        self.ram_before_mb = self._ram_used()

    def _ram_used(self) -> Optional[float]:
        for source in self.states:
            if source.name == "memory":
                return self._guard("memory", lambda s=source: s.snapshot().get("ram_used_mb"), None)
        return None

    def _snapshot(self) -> Dict[str, Any]:
        return {s.name: self._guard(s.name + " snapshot", s.snapshot, {}) for s in self.states}

    def start_window(self) -> None:
        self.before = self._snapshot()
        if self.power is not None:
            power = self.power
            self._sampler = self._guard("sampler start", lambda: _started(Sampler(power, self.period_s)), None)

    def stop_window(self) -> None:
        if self._sampler is not None:
            self.window = self._guard("sampler stop", self._sampler.stop, None)
            self._sampler = None
        self.after = self._snapshot()

    def throttle_reasons(self) -> List[str]:
        reasons: List[str] = []
        for s in self.states:
            b, a = self.before.get(s.name), self.after.get(s.name)
            if b and a:
                reasons += self._guard(s.name + " changes", lambda s=s, b=b, a=a: s.changes(b, a), [])
        return reasons

    def fields(self, iterations: int) -> Dict[str, Any]:
        """The ``result`` keys; never raises."""
        out = self._guard("result fields", lambda: clean(self._fields(iterations)), None)
        if out is None:
            out = {"energy_mj": None, "avg_power_w": None, "throttled": None, "telemetry": {"errors": self.errors}}
        return out

    def _fields(self, iterations: int) -> Dict[str, Any]:
        w = self.window or {}
        energy_j = w.get("energy_j")
        per = (lambda j: j / iterations * 1e3) if iterations else (lambda j: None)
        idle_w = (self.idle or {}).get("avg_power_w")
        reasons = self.throttle_reasons()
        power_reason = self.power_reason
        if self.power is not None and energy_j is None:
            power_reason = w.get("reason") or "the sampler did not run (%s)" % "; ".join(self.errors)
        above = None
        if w.get("avg_power_w") is not None and idle_w is not None and iterations:
            above = per((w["avg_power_w"] - idle_w) * w["span_s"])
        details = self._guard("power details", self.power.details, {}) if self.power is not None else {}
        ram_after = (self.after.get("memory") or {}).get("ram_used_mb")
        return {
            "energy_mj": per(energy_j) if energy_j is not None else None,
            "avg_power_w": w.get("avg_power_w"),
            "peak_power_w": w.get("peak_power_w"),
            "idle_power_w": idle_w,
            "power_source": self.power.name if self.power is not None else None,
            "power_reason": power_reason,
            "throttled": bool(reasons),
            "throttle_reason": "; ".join(reasons) if reasons else None,
            "cooldown_s": self.cooldown.get("cooldown_s"),
            "cooldown_timed_out": self.cooldown.get("timed_out"),
            "temp_before_c": _temp(self.before),
            "temp_after_c": _temp(self.after),
            "ram_delta_mb": None if ram_after is None or self.ram_before_mb is None
            else round(ram_after - self.ram_before_mb, 1),
            "telemetry": {
                "power": {"window": self.window, "idle": self.idle, "details": details, "probes": self.probes},
                "energy_above_idle_mj": above,
                "cooldown": self.cooldown,
                "state_before": self.before,
                "state_after": self.after,
                "ram_before_load_mb": self.ram_before_mb,
                "errors": list(self.errors),
            },
        }

    def close(self) -> None:
        if self._sampler is not None:
            self.stop_window()
        for source in ([self.power] if self.power is not None else []) + self.states:
            self._guard(source.name + " close", source.close, None)


def _started(sampler: Sampler) -> Sampler:
    sampler.start()
    return sampler


def clean(obj: Any) -> Any:
    """JSON-safe copy: tuples become lists, NaN/inf become None (the emitter rejects NaN)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _temp(snapshot: Dict[str, Any]) -> Optional[float]:
    temps = [s.get("temp_c") for s in snapshot.values() if isinstance(s, dict)]
    temps = [t for t in temps if isinstance(t, (int, float))]
    return max(temps) if temps else None
