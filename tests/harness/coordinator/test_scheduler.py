"""The scheduler's fault rules, driven by a fake clock (the sweep tests drive it with real faults)."""

from __future__ import annotations

import pytest

from harness.coordinator.scheduler import FaultPolicy, Scheduler
from harness.records import Job


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def jobs(n: int, target: str = "pool") -> list[Job]:
    return [Job(f"m{i}", "fp32", target, "onnxruntime") for i in range(n)]


def make(n_jobs: int = 3, boards: tuple[str, ...] = ("a", "b"), **policy: float) -> tuple[Scheduler, Clock]:
    clock = Clock()
    pol = FaultPolicy(**{"retries": 2, "down_after": 2, "reprobe_s": 10.0, "reprobe_max": 2, **policy})
    return Scheduler(jobs(n_jobs), {("pool", "onnxruntime"): boards}, pol, clock), clock


def test_each_board_runs_one_job_at_a_time_and_takes_the_next_when_free() -> None:
    s, _ = make(3)
    first, second = s.next_job("a"), s.next_job("b")
    assert first is not None and second is not None and first != second
    assert s.next_job("a") is None  # busy
    assert s.finished("a", None) == "done"
    third = s.next_job("a")
    assert third is not None and third not in (first, second)
    assert s.next_job("a") is None and s.next_job("b") is None
    s.finished("a", None)
    s.finished("b", None)
    assert s.idle


def test_a_job_that_failed_on_a_board_moves_to_another_board() -> None:
    s, _ = make(1)
    job = s.next_job("a")
    assert s.finished("a", "ConnectError: refused") == "retry"
    assert s.next_job("a") is None  # b is alive: the job prefers it
    assert s.next_job("b") == job
    assert s.attempts("b") == 2


def test_a_job_falls_back_to_the_same_board_when_it_is_the_only_one() -> None:
    s, _ = make(1, boards=("a",), down_after=5)
    job = s.next_job("a")
    assert s.finished("a", "CommandTimeout: 5 s") == "retry"
    assert s.next_job("a") == job


def test_retries_are_bounded() -> None:
    s, _ = make(1, boards=("a",), down_after=10, retries=1)
    s.next_job("a")
    assert s.finished("a", "lost") == "retry"
    s.next_job("a")
    assert s.finished("a", "lost") == "exhausted"
    assert s.idle


def test_failures_in_a_row_mark_a_board_down_and_a_success_resets_the_count() -> None:
    s, _ = make(4, boards=("a",), retries=5)
    s.next_job("a")
    s.finished("a", "lost")
    s.next_job("a")
    s.finished("a", None)  # measured: the count starts over
    s.next_job("a")
    s.finished("a", "lost")
    assert s.boards["a"].state == "up"
    s.next_job("a")
    s.finished("a", "lost again")
    assert s.boards["a"].state == "down" and s.boards["a"].reason == "lost again"
    assert s.next_job("a") is None
    assert s.down_boards() == {"a": "lost again"}


def test_a_job_failing_for_its_own_reason_does_not_count_against_the_board() -> None:
    s, _ = make(3, boards=("a",), down_after=1)
    s.next_job("a")
    assert s.finished("a", None) == "done"  # e.g. the model failed to load: not retryable
    assert s.boards["a"].state == "up"


def test_a_down_board_is_reprobed_with_backoff_then_given_up_and_its_jobs_fail() -> None:
    s, clock = make(2, boards=("a",), down_after=1, reprobe_s=10.0, reprobe_max=2)
    s.next_job("a")
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
    s.next_job("a")
    s.finished("a", "lost")
    clock.t = 100.0
    s.due_probes()
    s.probed("a", None)
    assert s.next_job("a") is not None
    assert s.down_boards() == {}


def test_a_board_given_up_from_the_start_leaves_the_pool_to_the_others() -> None:
    s, _ = make(2)
    s.give_up("a", "no Ray node advertises resource site:lab-x")
    assert s.next_job("a") is None
    assert s.next_job("b") is not None
    assert s.stranded() == []


@pytest.mark.parametrize("down_after", [1, 3])
def test_jobs_only_go_to_their_candidates(down_after: int) -> None:
    clock = Clock()
    js = [Job("m", "fp32", "x", "onnxruntime"), Job("m", "fp32", "y", "onnxruntime")]
    s = Scheduler(js, {("x", "onnxruntime"): ("x",), ("y", "onnxruntime"): ("y",)},
                  FaultPolicy(down_after=down_after), clock)
    assert s.next_job("y") == js[1]
    assert s.next_job("x") == js[0]
