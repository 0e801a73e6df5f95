"""The scheduler's fault rules, driven by a fake clock (the sweep tests drive it with real faults)."""

from __future__ import annotations

import pytest

from harness.coordinator.scheduler import FaultPolicy, Scheduler
from harness.coordinator.units import Unit, order_units
from harness.records import Job, JobSettings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def jobs(n: int, target: str = "pool") -> list[Unit]:
    return [Unit(Job(f"m{i}", "fp32", target, "onnxruntime")) for i in range(n)]


def make(n_jobs: int = 3, boards: tuple[str, ...] = ("a", "b"), **policy: float) -> tuple[Scheduler, Clock]:
    clock = Clock()
    pol = FaultPolicy(**{"retries": 2, "down_after": 2, "reprobe_s": 10.0, "reprobe_max": 2, **policy})
    return Scheduler(jobs(n_jobs), {("pool", "onnxruntime"): boards}, pol, clock), clock


def test_each_board_runs_one_job_at_a_time_and_takes_the_next_when_free() -> None:
    s, _ = make(3)
    first, second = s.next_unit("a"), s.next_unit("b")
    assert first is not None and second is not None and first != second
    assert s.next_unit("a") is None  # busy
    assert s.finished("a", None) == "done"
    third = s.next_unit("a")
    assert third is not None and third not in (first, second)
    assert s.next_unit("a") is None and s.next_unit("b") is None
    s.finished("a", None)
    s.finished("b", None)
    assert s.idle


def test_a_job_that_failed_on_a_board_moves_to_another_board() -> None:
    s, _ = make(1)
    job = s.next_unit("a")
    assert s.finished("a", "ConnectError: refused") == "retry"
    assert s.next_unit("a") is None  # b is alive: the job prefers it
    assert s.next_unit("b") == job
    assert s.attempts("b") == 2


def test_a_job_falls_back_to_the_same_board_when_it_is_the_only_one() -> None:
    s, _ = make(1, boards=("a",), down_after=5)
    job = s.next_unit("a")
    assert s.finished("a", "CommandTimeout: 5 s") == "retry"
    assert s.next_unit("a") == job


def test_retries_are_bounded() -> None:
    s, _ = make(1, boards=("a",), down_after=10, retries=1)
    s.next_unit("a")
    assert s.finished("a", "lost") == "retry"
    s.next_unit("a")
    assert s.finished("a", "lost") == "exhausted"
    assert s.idle


def test_failures_in_a_row_mark_a_board_down_and_a_success_resets_the_count() -> None:
    s, _ = make(4, boards=("a",), retries=5)
    s.next_unit("a")
    s.finished("a", "lost")
    s.next_unit("a")
    s.finished("a", None)  # measured: the count starts over
    s.next_unit("a")
    s.finished("a", "lost")
    assert s.boards["a"].state == "up"
    s.next_unit("a")
    s.finished("a", "lost again")
    assert s.boards["a"].state == "down" and s.boards["a"].reason == "lost again"
    assert s.next_unit("a") is None
    assert s.down_boards() == {"a": "lost again"}


def test_a_job_failing_for_its_own_reason_does_not_count_against_the_board() -> None:
    s, _ = make(3, boards=("a",), down_after=1)
    s.next_unit("a")
    assert s.finished("a", None) == "done"  # e.g. the model failed to load: not retryable
    assert s.boards["a"].state == "up"


def test_a_down_board_is_reprobed_with_backoff_then_given_up_and_its_jobs_fail() -> None:
    s, clock = make(2, boards=("a",), down_after=1, reprobe_s=10.0, reprobe_max=2)
    s.next_unit("a")
    s.finished("a", "link down")
    assert s.due_probes() == [] and s.next_wake() == 10.0
    clock.t = 10.0
    assert s.due_probes() == ["a"]
    assert s.stranded() == []  # being probed: its jobs wait
    s.probed("a", "ConnectError: timed out")
    assert s.next_wake() == 10.0 + 20.0  # doubled
    clock.t = 30.0
    assert s.due_probes() == ["a"]
    s.probed("a", "ConnectError: timed out")
    assert s.boards["a"].state == "gone"
    stranded = s.stranded()
    assert len(stranded) == 2
    assert all("a: ConnectError: timed out" in reason for _, _, reason in stranded)
    assert s.idle
    assert s.down_boards() == {"a": "ConnectError: timed out"}


def test_a_board_that_answers_its_probe_is_back_in_service() -> None:
    s, clock = make(2, boards=("a",), down_after=1)
    s.next_unit("a")
    s.finished("a", "lost")
    clock.t = 100.0
    s.due_probes()
    s.probed("a", None)
    assert s.next_unit("a") is not None
    assert s.down_boards() == {}


def test_a_board_given_up_from_the_start_leaves_the_pool_to_the_others() -> None:
    s, _ = make(2)
    s.give_up("a", "no Ray node advertises resource site:lab-x")
    assert s.next_unit("a") is None
    assert s.next_unit("b") is not None
    assert s.stranded() == []


@pytest.mark.parametrize("down_after", [1, 3])
def test_jobs_only_go_to_their_candidates(down_after: int) -> None:
    clock = Clock()
    js = [Unit(Job("m", "fp32", "x", "onnxruntime")), Unit(Job("m", "fp32", "y", "onnxruntime"))]
    s = Scheduler(js, {("x", "onnxruntime"): ("x",), ("y", "onnxruntime"): ("y",)},
                  FaultPolicy(down_after=down_after), clock)
    assert s.next_unit("y") == js[1]
    assert s.next_unit("x") == js[0]


def _job(model: str, target: str = "b", repeats: int = 1, canary: str | None = None) -> Job:
    return Job(model, "fp32", target, "onnxruntime", JobSettings(repeats=repeats, canary=canary))


def _drain(s: Scheduler, board: str) -> list[tuple[str, int]]:
    out = []
    while (unit := s.next_unit(board)) is not None:
        out.append((unit.job.model, unit.repeat))
        s.finished(board, None)
    return out


def test_interleaved_repeats_alternate_direction_so_drift_spreads_over_the_variants() -> None:
    js = [_job("A", repeats=3), _job("B", repeats=3), _job("C", repeats=3)]
    s = Scheduler(order_units(js, "interleaved"), {("b", "onnxruntime"): ("b",)}, FaultPolicy(), Clock())
    assert _drain(s, "b") == [("A", 0), ("B", 0), ("C", 0), ("C", 1), ("B", 1), ("A", 1), ("A", 2), ("B", 2), ("C", 2)]


def test_sequential_repeats_run_back_to_back_and_resume_skips_stored_repeats() -> None:
    js = [_job("A", repeats=2), _job("B", repeats=2)]
    s = Scheduler(order_units(js, "sequential", {js[0].key: [0]}), {("b", "onnxruntime"): ("b",)}, FaultPolicy(),
                  Clock())
    assert _drain(s, "b") == [("A", 1), ("B", 0), ("B", 1)]


def test_the_canary_runs_first_and_last_on_its_board() -> None:
    """The last canary waits while any other unit for its board is queued, even one queued later by a retry."""
    js = [_job("A"), _job("B"), _job("canary", canary="last"), _job("canary", canary="first")]
    s = Scheduler(order_units(js, "sequential"), {("b", "onnxruntime"): ("b",)},
                  FaultPolicy(down_after=5), Clock())
    first = s.next_unit("b")
    assert first is not None and first.job.settings.canary == "first"
    s.finished("b", None)
    a = s.next_unit("b")
    assert a is not None and a.job.model == "A"
    assert s.finished("b", "link dropped") == "retry"  # A goes back to the front
    assert _drain(s, "b") == [("A", 0), ("B", 0), ("canary", 0)]


def test_canary_windows_between_are_spread_over_the_units_of_their_target() -> None:
    between = Job("canary", "fp32", "b", "onnxruntime", JobSettings(repeats=3, canary="between", between="b"))
    js = [_job("A", repeats=2), _job("B", repeats=2), _job("canary", canary="first"), _job("canary", canary="last"),
          between, _job("other", target="c")]
    s = Scheduler(order_units(js, "interleaved"), {("b", "onnxruntime"): ("b",), ("c", "onnxruntime"): ("c",)},
                  FaultPolicy(), Clock())
    # b's four units A0 B0 B1 A1 with a canary window after each but the last, which the last canary follows
    assert _drain(s, "b") == [("canary", 0), ("A", 0), ("canary", 0), ("B", 0), ("canary", 1), ("B", 1), ("canary", 2),
                              ("A", 1), ("canary", 0)]
    assert _drain(s, "c") == [("other", 0)]
    resumed = order_units(js, "interleaved", {between.key: [0, 1]})
    assert [(u.job.model, u.repeat) for u in resumed if u.job is between] == [("canary", 2)]


def test_cancel_drops_the_remaining_repeats_of_a_failed_job() -> None:
    js = [_job("A", repeats=3), _job("B")]
    s = Scheduler(order_units(js, "sequential"), {("b", "onnxruntime"): ("b",)}, FaultPolicy(), Clock())
    s.next_unit("b")
    s.finished("b", None)
    assert s.cancel(js[0].key) == 2
    assert _drain(s, "b") == [("B", 0)]
