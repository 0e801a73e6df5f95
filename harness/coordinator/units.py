"""What the scheduler hands out: one timed window of one job (a job runs ``measure.repeats`` of them).

The order of the units is the measurement order on each board (the scheduler gives a board
the first unit it can run): ``sequential`` runs a job's repeats back to back;
``interleaved`` alternates direction each round, A B C C B A A B C, so a drift across the
sweep (heat, another tenant) spreads evenly over the variants instead of passing for a
difference between them (docs/measurement.md, trap 2). A canary job marked ``first`` leads its
board's queue; one marked ``last`` runs only once its board has nothing else left; the
windows of one marked ``between`` (``canary: {every: N}``) are spread evenly over the units
of its board's target, so the board measures the canary next to its jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.canary import with_canary_windows
from harness.records import Job


@dataclass(frozen=True)
class Unit:
    job: Job
    repeat: int = 0
    final: bool = False  # taken by a board only when no other unit is left for it

    def label(self) -> str:
        n = self.job.settings.repeats
        return self.job.label() + (f" (repeat {self.repeat + 1}/{n})" if n > 1 else "")


def order_units(jobs: Sequence[Job], order: str, done: Mapping[str, Iterable[int]] | None = None) -> list[Unit]:
    """Every unit still to measure, in measurement order; ``done`` maps a job key to the
    repeats already stored (a resumed run measures only the rest)."""
    done = done or {}
    body = [j for j in jobs if not j.settings.canary]
    rounds = max((j.settings.repeats for j in body), default=1)
    if order == "interleaved":
        pairs = [(job, r) for r in range(rounds) for job in (body if r % 2 == 0 else reversed(body))
                 if r < job.settings.repeats]
    else:
        pairs = [(job, r) for job in body for r in range(job.settings.repeats)]
    units = [Unit(job, r, final) for job, r, final in with_canary_windows(pairs, jobs)]
    return [u for u in units if u.repeat not in set(done.get(u.job.key, ()))]
