"""Which board runs which job next, and what a failure does to the job and to the board.

Pure bookkeeping, no Ray and no I/O, so every fault path is tested without a fleet:

- the scheduler hands out units (one timed window of a job, see units.py) in their order;
  a ``final`` unit goes to a board only when nothing else is left for it;
- a job may run on any of its candidate boards (the members of its pool that offer its
  runtime); a board runs one job at a time;
- a job that failed for a transport reason goes back to the front of the queue and prefers
  another candidate next time; it fails for good after ``retries`` retries;
- ``down_after`` transport failures in a row mark a board down: it gets no job until a
  re-probe succeeds; probes back off (``reprobe_s``, doubling) and after ``reprobe_max``
  failed probes the board is given up for this sweep;
- a job whose every candidate is given up fails with the boards' reasons, so a sweep over
  a dead fleet ends instead of waiting for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from harness.coordinator.units import Unit


@dataclass(frozen=True)
class FaultPolicy:
    retries: int = 2
    down_after: int = 2
    reprobe_s: float = 30.0
    reprobe_max: int = 3


@dataclass
class Board:
    name: str
    state: str = "up"  # up | busy | down | probing | gone
    failures_in_row: int = 0
    reason: str | None = None  # why it went down
    probes: int = 0  # failed re-probes since it went down
    next_probe: float = 0.0

    @property
    def usable(self) -> bool:
        return self.state in ("up", "busy", "down", "probing")


@dataclass
class _Entry:
    unit: Unit
    candidates: tuple[str, ...]
    attempts: int = 0
    avoid: set[str] = field(default_factory=set)  # boards it already failed on


class Scheduler:
    def __init__(self, units: Iterable[Unit], candidates: Mapping[tuple[str, str], tuple[str, ...]],
                 policy: FaultPolicy, clock: Callable[[], float]):
        """``candidates`` maps each (target, runtime) of the plan to the boards that may run it."""
        self.policy = policy
        self.clock = clock
        self.queue: deque[_Entry] = deque(
            _Entry(u, tuple(candidates[(u.job.device, u.job.runtime)])) for u in units)
        self.boards = {b: Board(b) for names in candidates.values() for b in names}
        self._running: dict[str, _Entry] = {}

    # -- dispatch ------------------------------------------------------------------------
    def next_unit(self, board: str) -> Unit | None:
        """Claim the next queued unit ``board`` can run, preferring units that did not fail there
        (taken anyway when no other candidate of the unit is alive)."""
        b = self.boards[board]
        if b.state != "up":
            return None
        pick = None
        mine = [e for e in self.queue if board in e.candidates]
        for entry in mine:
            if entry.unit.final and any(not e.unit.final for e in mine):
                continue
            if board not in entry.avoid or not self._other_alive(entry, board):
                pick = entry
                break
        if pick is None:
            return None
        self.queue.remove(pick)
        pick.attempts += 1
        b.state = "busy"
        self._running[board] = pick
        return pick.unit

    def cancel(self, job_key: str) -> int:
        """Drop the queued units of a job (one of its repeats failed: it has failed); returns how many."""
        doomed = [e for e in self.queue if e.unit.job.key == job_key]
        for entry in doomed:
            self.queue.remove(entry)
        return len(doomed)

    def attempts(self, board: str) -> int:
        return self._running[board].attempts

    def _other_alive(self, entry: _Entry, board: str) -> bool:
        return any(c != board and self.boards[c].state in ("up", "busy") for c in entry.candidates)

    # -- outcomes ------------------------------------------------------------------------
    def finished(self, board: str, retryable_error: str | None) -> str:
        """Record how the job on ``board`` ended: ``done`` (store it as it is), ``retry``
        (it went back to the queue) or ``exhausted`` (store it failed: out of retries)."""
        entry = self._running.pop(board)
        b = self.boards[board]
        if retryable_error is None:  # measured, or failed for a reason of its own: the board is fine
            b.failures_in_row = 0
            b.state = "up"
            return "done"
        b.failures_in_row += 1
        entry.avoid.add(board)
        if b.failures_in_row >= self.policy.down_after:
            self._down(b, retryable_error)
        else:
            b.state = "up"
        if entry.attempts > self.policy.retries:
            return "exhausted"
        self.queue.appendleft(entry)
        return "retry"

    def _down(self, b: Board, reason: str) -> None:
        b.state, b.reason, b.probes = "down", reason, 0
        b.next_probe = self.clock() + self.policy.reprobe_s

    def give_up(self, board: str, reason: str) -> None:
        """The board cannot be used at all in this sweep (e.g. no Ray node can reach it)."""
        b = self.boards[board]
        b.state, b.reason = "gone", reason

    # -- probing -------------------------------------------------------------------------
    def due_probes(self) -> list[str]:
        """Down boards whose re-probe time has come; they are marked as being probed."""
        now = self.clock()
        due = [b.name for b in self.boards.values() if b.state == "down" and b.next_probe <= now]
        for name in due:
            self.boards[name].state = "probing"
        return due

    def probed(self, board: str, error: str | None) -> None:
        b = self.boards[board]
        if error is None:
            b.state, b.failures_in_row, b.probes = "up", 0, 0
            return
        b.probes += 1
        b.reason = error
        if b.probes >= self.policy.reprobe_max:
            b.state = "gone"
        else:
            b.state = "down"
            b.next_probe = self.clock() + self.policy.reprobe_s * 2**b.probes

    def next_wake(self) -> float | None:
        """When the next re-probe is due (None: none pending)."""
        times = [b.next_probe for b in self.boards.values() if b.state == "down"]
        return min(times) if times else None

    # -- the end -------------------------------------------------------------------------
    def stranded(self) -> list[tuple[Unit, int, str]]:
        """Remove and return queued units that no board left can run, with the reason."""
        out = []
        for entry in list(self.queue):
            if any(self.boards[c].usable for c in entry.candidates):
                continue
            self.queue.remove(entry)
            why = "; ".join(f"{c}: {self.boards[c].reason}" for c in entry.candidates)
            out.append((entry.unit, entry.attempts, f"no board left to run it ({why})"))
        return out

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running: the sweep is over."""
        return not self.queue and not self._running

    def down_boards(self) -> dict[str, str]:
        """Boards that ended the sweep down or given up, with the reason."""
        return {b.name: b.reason or "" for b in self.boards.values() if b.state in ("down", "probing", "gone")}
