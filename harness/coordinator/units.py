"""What the scheduler hands out: one timed window of one job (a job runs ``measure.repeats`` of them).

The order of the units is the measurement order on each board (the scheduler gives a board
the first unit it can run): ``sequential`` runs a job's repeats back to back;
``interleaved`` alternates direction each round, A B C C B A A B C, so a drift across the
sweep (heat, another tenant) spreads evenly over the variants instead of passing for a
difference between them (MEASUREMENT.md, trap 2). A canary job marked ``first`` leads its
board's queue; one marked ``last`` runs only once its board has nothing else left; the
windows of one marked ``between`` (``canary: {every: N}``) are spread evenly over the units
of its board's target, so the board measures the canary next to its jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.records import Job


@dataclass(frozen=True)
class Unit:
    job: Job
    repeat: int = 0
    final: bool = False  # taken by a board only when no other unit is left for it

    def label(self) -> str:
        n = self.job.settings.get("measure", {}).get("repeats", 1)
        return self.job.label() + (f" (repeat {self.repeat + 1}/{n})" if n > 1 else "")


def repeats_of(job: Job) -> int:
    return int(job.settings.get("measure", {}).get("repeats", 1))


def order_units(jobs: Sequence[Job], order: str, done: Mapping[str, Iterable[int]] | None = None) -> list[Unit]:
    """Every unit still to measure, in measurement order; ``done`` maps a job key to the
    repeats already stored (a resumed run measures only the rest)."""
    done = done or {}
    first = [j for j in jobs if j.settings.get("canary") == "first"]
    last = [j for j in jobs if j.settings.get("canary") == "last"]
    body = [j for j in jobs if not j.settings.get("canary")]
    rounds = max((repeats_of(j) for j in body), default=1)
    if order == "interleaved":
        units = [Unit(job, r) for r in range(rounds) for job in (body if r % 2 == 0 else reversed(body))
                 if r < repeats_of(job)]
    else:
        units = [Unit(job, r) for job in body for r in range(repeats_of(job))]
    units = [Unit(j) for j in first] + _with_canaries_between(units, [j for j in jobs if j.settings.get("canary") == "between"])
    units += [Unit(j, final=True) for j in last]
    return [u for u in units if u.repeat not in set(done.get(u.job.key, ()))]


def _with_canaries_between(units: list[Unit], between: Sequence[Job]) -> list[Unit]:
    """``units`` with each ``between`` canary's windows spread evenly over its target's units:
    window k follows the target's unit at (k + 1) / (windows + 1) of the way."""
    after: dict[int, list[Unit]] = {}
    for job in between:
        mine = [i for i, u in enumerate(units) if u.job.device == job.settings["between"]]
        n = repeats_of(job)
        for k in range(n if mine else 0):
            after.setdefault(mine[max(0, round((k + 1) * len(mine) / (n + 1)) - 1)], []).append(Unit(job, k))
    return [x for i, u in enumerate(units) for x in (u, *after.get(i, ()))]
