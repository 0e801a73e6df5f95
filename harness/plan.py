"""Suite x inventory -> jobs.

Impossible pairs (a runtime the device does not offer, a variant whose file format or
precision the runtime cannot consume) are dropped here, before anything is built or sent to a board, and reported.

A job's target (``Job.device``) is a board, or a pool of interchangeable boards (the
inventory's ``pool``): a pool's job runs once, on whichever member offering its runtime is
free, and moves to another member when its board drops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.config import Device, Suite
from harness.config.suite import BuiltinModel
from harness.errors import ConfigError
from harness.records import CANARY_BLOCK, Job
from devices.agent.runtimes import get_runtime
from harness.variants.build import chain_format, chain_runtimes, make_recipes, split_chain


# The canary (``canary: true``): a fixed built-in model measured first and last on every board.
# A real CNN rather than the tiny digits net: its latency moves with the board's memory and
# compute (clocks, heat, other tenants), not with the agent's per-call overhead.
CANARY = BuiltinModel(builtin="mobilenetv2-224", name="canary")
CANARY_VARIANT = "fp32"


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    skipped: tuple[str, ...]  # why some combinations were not planned
    devices: tuple[Device, ...]
    boards: dict[tuple[str, str], tuple[str, ...]]  # (target, runtime) -> boards that may run its jobs


def targets(devices: Sequence[Device]) -> dict[str, tuple[Device, ...]]:
    """Measurement targets in inventory order: each pool, and each board outside any pool."""
    out: dict[str, list[Device]] = {}
    for d in devices:
        out.setdefault(d.pool or d.name, []).append(d)
    return {name: tuple(members) for name, members in out.items()}


def select_devices(
    devices: Sequence[Device], suite: Suite, names: Sequence[str] = (), tags: Sequence[str] = ()
) -> tuple[Device, ...]:
    """Devices picked by the suite's selector, narrowed by ``--devices`` / ``--tags``."""
    known = {d.name for d in devices} | {d.pool for d in devices if d.pool}
    for wanted in (*(suite.devices.names or ()), *names):
        if wanted not in known:
            raise ConfigError(f"unknown device or pool {wanted!r}; the inventory has: {', '.join(sorted(known))}",
                              field="devices")
    sel = suite.devices

    def named(d: Device, wanted: Sequence[str]) -> bool:
        return d.name in wanted or d.pool in wanted

    picked = [
        d for d in devices
        if (sel.names is None or named(d, sel.names))
        and (sel.tags is None or set(sel.tags) & set(d.tags))
        and (sel.kinds is None or d.kind in sel.kinds)
        and (not names or named(d, names))
        and (not tags or set(tags) & set(d.tags))
    ]  # fmt: skip
    if not picked:
        raise ConfigError("no device in the inventory matches the suite's 'devices' selection and the CLI filters")
    return tuple(picked)


def make_plan(suite: Suite, devices: Sequence[Device]) -> Plan:
    jobs: list[Job] = []
    skipped: list[str] = []
    boards: dict[tuple[str, str], tuple[str, ...]] = {}
    for target, members in targets(devices).items():
        for runtime in suite.runtimes:
            offering = tuple(d.name for d in members if runtime in d.runtimes)
            if not offering:
                skipped.append(f"{target} does not offer {runtime}")
                continue
            boards[(target, runtime)] = offering
            settings = {
                "measure": suite.measure.model_dump(),
                "runtime_options": suite.runtime_options.get(runtime, {}),
            }
            reads = get_runtime(runtime).formats
            if suite.canary_block_s is not None:  # the canary inside the window, on the job's runtime
                if "onnx" in reads:
                    settings[CANARY_BLOCK] = suite.canary_block_s
                else:
                    skipped.append(f"the interleaved canary on {target}: {runtime} cannot read its onnx file")
            for variant in suite.variants:
                recipes = make_recipes(split_chain(variant), suite.recipes)
                fmt = chain_format(recipes)
                if fmt not in reads:
                    skipped.append(f"{variant}: {runtime} cannot read its {fmt} file (it reads "
                                   f"{', '.join(sorted(reads))})")
                    continue
                allowed = chain_runtimes(recipes)
                if allowed is not None and runtime not in allowed:
                    skipped.append(f"{variant} cannot run on {runtime} (runs on {', '.join(sorted(allowed))})")
                    continue
                for model in suite.models:
                    jobs.append(Job(model.label, variant, target, runtime, settings))
    if not jobs:
        raise ConfigError("the suite plans no job: " + "; ".join(dict.fromkeys(skipped)))
    if suite.canary:
        jobs += _canaries(suite, devices, boards, jobs)
    return Plan(tuple(jobs), tuple(dict.fromkeys(skipped)), tuple(devices), boards)


def _canaries(suite: Suite, devices: Sequence[Device], boards: dict[tuple[str, str], tuple[str, ...]],
              body: Sequence[Job]) -> list[Job]:
    """Canary jobs per board (first and last), on the first of the suite's runtimes the board
    offers, one window each (the pair is already two fresh processes). With ``every: N``, a
    third job whose windows (repeats) go between the board's jobs, one per N of them; a pool
    member runs about one in ``members`` of the pool's jobs, so it gets that share of them."""
    out = []
    every = suite.canary_every
    for d in devices:
        runtime = next((r for r in suite.runtimes if r in d.runtimes), None)
        if runtime is None:
            continue
        boards[(d.name, runtime)] = (d.name,)
        target = d.pool or d.name
        members = len({b for (t, _), names in boards.items() if t == target for b in names}) or 1
        units = sum(int(j.settings["measure"].get("repeats", 1)) for j in body if j.device == target)
        between = math.ceil(units / members / every) - 1 if every else 0
        for when, windows in (("first", 1), ("between", between), ("last", 1)):
            if windows <= 0:
                continue
            settings = {"measure": {**suite.measure.model_dump(), "repeats": windows},
                        "runtime_options": suite.runtime_options.get(runtime, {}), "canary": when}
            if when == "between":
                settings["between"] = target  # order_units spreads these windows over the target's units
            out.append(Job(CANARY.label, CANARY_VARIANT, d.name, runtime, settings))
    return out
