"""The board canary on the coordinator's side: which model it is, where its jobs go in the
plan, and where their windows go in a board's queue.

A fixed built-in model measured on every board (``canary:`` in a suite) so the gate can
tell a slower build from a slower board (``harness/gate/canary.py``). Three placements:
first and last on every board (``canary: true``), windows between a board's jobs
(``{every: N}``), and inside every job's own window (``{interleaved: true}``: the agent's
``devices/agent/canary.py`` alternates it with the job). The report's views of it are in
``reports/canary.py``. Its name in results is defined once, by the agent (``CANARY_NAME``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from devices.agent.canary import CANARY_NAME
from devices.agent.measurespec import single_stream
from harness.config import Device, Suite
from harness.config.suite import BuiltinModel
from harness.records import Job, JobSettings

# A real CNN rather than the tiny digits net: its latency moves with the board's memory and
# compute (clocks, heat, other tenants), not with the agent's per-call overhead.
CANARY = BuiltinModel(builtin="mobilenetv2-224", name=CANARY_NAME)
CANARY_VARIANT = "fp32"
# A canary job's place on its board (``JobSettings.canary``).
FIRST, BETWEEN, LAST = "first", "between", "last"


def interleaved_block(suite: Suite, reads: frozenset[str]) -> tuple[float | None, bool]:
    """The interleaved canary's block (s) for jobs on a runtime that reads ``reads``
    (None: not interleaved), and whether the suite asked for it but the runtime cannot
    read the canary's ONNX file."""
    block_s = suite.canary_block_s
    if block_s is not None and "onnx" not in reads:
        return None, True
    return block_s, False


def canary_jobs(suite: Suite, devices: Sequence[Device], boards: dict[tuple[str, str], tuple[str, ...]],
                body: Sequence[Job]) -> list[Job]:
    """Canary jobs per board (first and last), on the first of the suite's runtimes the board
    offers, one window each (the pair is already two fresh processes). With ``every: N``, a
    third job whose windows go between the board's jobs, one per N of them; a pool member
    runs about one in ``members`` of the pool's jobs, so it gets that share of them.
    ``boards`` gains each canary's (board, runtime)."""
    out = []
    every = suite.canary_every
    for d in devices:
        runtime = next((r for r in suite.runtimes if r in d.runtimes), None)
        if runtime is None:
            continue
        boards[(d.name, runtime)] = (d.name,)
        target = d.pool or d.name
        members = len({b for (t, _), names in boards.items() if t == target for b in names}) or 1
        units = sum(j.settings.repeats for j in body if j.device == target)
        between = math.ceil(units / members / every) - 1 if every else 0
        for place, windows in ((FIRST, 1), (BETWEEN, between), (LAST, 1)):
            if windows <= 0:
                continue
            measure = single_stream(suite.measure.to_wire())  # the board's yardstick, whatever the suite's scenario
            settings = JobSettings(measure, suite.runtime_options.get(runtime, {}), windows,
                                   suite.measure.order, canary=place, between=target if place == BETWEEN else None)
            out.append(Job(CANARY.label, CANARY_VARIANT, d.name, runtime, settings))
    return out


def with_canary_windows(body: list[tuple[Job, int]], jobs: Sequence[Job]) -> list[tuple[Job, int, bool]]:
    """The body's (job, window) pairs in order, with the canaries' windows placed: each
    ``first`` leads, each ``between`` canary's windows are spread evenly over its target's
    (window k follows the target's window at (k + 1) / (windows + 1) of the way), each
    ``last`` closes, marked final (a board takes it only when nothing else is left)."""
    after: dict[int, list[tuple[Job, int]]] = {}
    for job in (j for j in jobs if j.settings.canary == BETWEEN):
        mine = [i for i, (j, _) in enumerate(body) if j.device == job.settings.between]
        n = job.settings.repeats
        for k in range(n if mine else 0):
            after.setdefault(mine[max(0, round((k + 1) * len(mine) / (n + 1)) - 1)], []).append((job, k))
    placed = [(j, 0, False) for j in jobs if j.settings.canary == FIRST]
    placed += [(j, w, False) for i, pair in enumerate(body) for j, w in (pair, *after.get(i, ()))]
    return placed + [(j, 0, True) for j in jobs if j.settings.canary == LAST]
