"""The sampler's energy against synthetic sources of known power, counter wraps, flaky
sensors, its cost while sampling, and the cooldown wait."""

from __future__ import annotations

import threading
import time

import pytest

from devices.agent.telemetry.base import Source
from devices.agent.telemetry.cooldown import cool_down, target_c
from devices.agent.telemetry.rapl import counter_delta
from devices.agent.telemetry.sampler import Sampler, measure_for, trapezoid


class ConstantPower(Source):
    name = "synthetic"

    def __init__(self, watts: float, fail_every: int = 0):
        super().__init__()
        self.watts, self.fail_every, self.reads = watts, fail_every, 0

    def read(self) -> float:
        self.reads += 1
        if self.fail_every and self.reads % self.fail_every == 0:
            raise OSError(5, "Input/output error")
        return self.watts


class WrappingCounter(Source):
    """A RAPL-like counter (uJ) for a constant ``watts``, wrapping at ``max_uj``."""

    name = "synthetic-counter"
    kind = "energy"

    def __init__(self, watts: float, max_uj: int):
        super().__init__()
        self.watts, self.max_uj, self.t0 = watts, max_uj, time.monotonic()
        self.wraps_seen = 0

    def read(self) -> int:
        return int((time.monotonic() - self.t0) * self.watts * 1e6) % self.max_uj

    def delta(self, first: int, last: int) -> float:
        if last < first:
            self.wraps_seen += 1
        return counter_delta(first, last, self.max_uj) / 1e6


def test_constant_two_watts_over_half_a_second_is_one_joule() -> None:
    sampler = Sampler(ConstantPower(2.0), period_s=0.05)
    sampler.start()
    time.sleep(0.5)
    w = sampler.stop()
    assert w["source"] == "synthetic" and w["kind"] == "power" and w["read_errors"] == 0
    assert w["span_s"] == pytest.approx(0.5, abs=0.1)  # slack for a loaded machine's sleep
    assert w["energy_j"] == pytest.approx(1.0, rel=0.2)
    assert w["energy_j"] == pytest.approx(2.0 * w["span_s"], rel=1e-6)
    assert w["avg_power_w"] == pytest.approx(2.0) and w["peak_power_w"] == 2.0
    assert 6 <= w["n_samples"] <= 13 and w["period_ms"] == 50.0


def test_trapezoid_of_a_ramp_with_edges_held() -> None:
    s = 1_000_000_000
    ramp = [(0, 0.0), (s, 2.0), (2 * s, 4.0)]
    assert trapezoid(ramp, 0, 2 * s) == pytest.approx(4.0)  # area under 0 -> 4 W over 2 s
    assert trapezoid(ramp, s // 2, s) == pytest.approx(0.75)  # 0.5 s of a 1 -> 2 W ramp
    assert trapezoid([(s, 3.0)], 0, 2 * s) == pytest.approx(6.0)  # one sample held over the window
    assert trapezoid([], 0, s) is None and trapezoid(ramp, s, s) is None


def test_energy_counter_wrapping_several_times_in_the_window() -> None:
    # wraps every 0.4 s (0.15 J per 50 ms period): a read delayed by less than that is still exact
    src = WrappingCounter(3.0, max_uj=1_200_000)
    sampler = Sampler(src, period_s=0.05)
    sampler.start()
    time.sleep(1.0)
    w = sampler.stop()
    assert src.wraps_seen >= 2
    assert w["kind"] == "energy" and w["energy_j"] == pytest.approx(3.0 * w["span_s"], rel=0.05)
    assert w["avg_power_w"] == pytest.approx(3.0, rel=0.05)
    assert w["peak_power_w"] == pytest.approx(3.0, rel=0.2)


def test_flaky_sensor_loses_samples_not_the_window() -> None:
    sampler = Sampler(ConstantPower(1.5, fail_every=3), period_s=0.02)
    sampler.start()
    time.sleep(0.3)
    w = sampler.stop()
    assert w["read_errors"] >= 1 and "Input/output error" in w["first_error"]
    assert w["energy_j"] == pytest.approx(1.5 * w["span_s"], rel=1e-6)


def test_dead_sensor_gives_a_reason() -> None:
    sampler = Sampler(ConstantPower(1.0, fail_every=1), period_s=0.02)
    sampler.start()
    time.sleep(0.1)
    w = sampler.stop()
    assert w["energy_j"] is None and w["avg_power_w"] is None and w["n_samples"] == 0
    assert w["reason"].startswith("no usable samples") and "OSError" in w["reason"]


def test_period_floor_and_thread_ends() -> None:
    slow = ConstantPower(1.0)
    slow.min_period_ms = 100.0
    sampler = Sampler(slow, period_s=0.05)
    assert sampler.period_s == 0.1
    before = threading.active_count()
    sampler.start()
    assert threading.active_count() == before + 1
    time.sleep(0.35)
    w = sampler.stop()
    assert threading.active_count() == before
    assert 3 <= w["n_samples"] <= 6


def test_sampler_sleeps_between_samples() -> None:
    """No busy loop: sampling 1 s at 50 ms costs the process a few ms of CPU at most."""
    sampler = Sampler(ConstantPower(1.0), period_s=0.05)
    cpu0 = time.process_time()
    sampler.start()
    time.sleep(1.0)
    sampler.stop()
    assert time.process_time() - cpu0 < 0.05


def test_idle_baseline_measure_for() -> None:
    w = measure_for(ConstantPower(0.8), 0.2, period_s=0.05)
    assert w["avg_power_w"] == pytest.approx(0.8) and 0.2 <= w["span_s"] < 1.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, s: float) -> None:
        self.now += s

    def __call__(self) -> float:
        return self.now


def test_cooldown_waits_until_under_target() -> None:
    clock = FakeClock()
    temps = iter([70.0, 65.0, 58.0, 54.5, 50.0])
    out = cool_down(lambda: next(temps), 55.0, max_wait_s=120, sleep=clock.sleep, clock=clock)
    assert out == {"cooldown_s": 3.0, "timed_out": False, "target_c": 55.0, "start_c": 70.0, "end_c": 54.5}


def test_cooldown_times_out() -> None:
    clock = FakeClock()
    out = cool_down(lambda: 80.0, 55.0, max_wait_s=5.5, sleep=clock.sleep, clock=clock)
    assert out["timed_out"] is True and out["cooldown_s"] == pytest.approx(5.5) and out["end_c"] == 80.0


def test_cooldown_without_target_or_temperature_returns_at_once() -> None:
    out = cool_down(lambda: 90.0, None, 60)
    assert out["cooldown_s"] == 0.0 and out["reason"] == "no cooldown configured"
    out = cool_down(lambda: None, 50.0, 60)
    assert out["cooldown_s"] == 0.0 and out["reason"] == "no readable temperature" and not out["timed_out"]


def test_cooldown_target_rules() -> None:
    assert target_c(55.0, None, None) == 55.0
    assert target_c(None, 40.0, 5.0) == 45.0
    assert target_c(42.0, 40.0, 5.0) == 45.0  # either rule suffices: the easier one
    assert target_c(None, 40.0, None) is None
