"""Suite x inventory -> jobs.

Impossible pairs (a runtime the device does not offer, a variant whose file format or
precision the runtime cannot consume) are dropped here, before anything is built or sent to a board, and reported.

A job's target (``Job.device``) is a board, or a pool of interchangeable boards (the
inventory's ``pool``): a pool's job runs once, on whichever member offering its runtime is
free, and moves to another member when its board drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from devices.agent.runtimes import get_runtime
from harness.axes import expand
from harness.canary import canary_jobs, interleaved_block
from harness.config import Device, Suite
from harness.config.yamlio import location
from harness.errors import ConfigError
from harness.powermodes import check_known, target_modes
from harness.records import Job, JobSettings
from harness.variants.build import chain_format, chain_precision, chain_runtimes, make_recipes, split_chain


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
    devices: Sequence[Device], suite: Suite, names: Sequence[str] = (), tags: Sequence[str] = (),
    suite_path: str | None = None,
) -> tuple[Device, ...]:
    """Devices picked by the suite's selector, narrowed by ``--devices`` / ``--tags``. An error
    names the suite's line (``suite_path``) or the command-line option it comes from."""
    known = {d.name for d in devices} | {d.pool for d in devices if d.pool}
    have = f"the inventory has: {', '.join(sorted(known))}"
    for i, wanted in enumerate(suite.devices.names or ()):
        if wanted not in known:
            raise ConfigError(f"unknown device or pool {wanted!r}; {have}",
                              location=location(suite_path, ("devices", "names", i)), field=f"devices.names.{i}")
    for wanted in names:
        if wanted not in known:
            raise ConfigError(f"unknown device or pool {wanted!r}; {have}", field="--devices")
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
        all_tags = ", ".join(sorted({t for d in devices for t in d.tags})) or "none"
        if tags and not any(set(tags) & set(d.tags) for d in devices):
            raise ConfigError(f"no device has any of the tags {', '.join(map(repr, tags))}; the inventory's tags: "
                              f"{all_tags}", field="--tags")
        raise ConfigError("no device in the inventory matches the suite's 'devices' selection"
                          + (" and the command line's --devices/--tags" if names or tags else "")
                          + f" (its devices: {', '.join(f'{d.name} ({d.kind}, tags: {list(d.tags)})' for d in devices)})",
                          location=location(suite_path, ("devices",)), field="devices")
    return tuple(picked)


def make_plan(suite: Suite, devices: Sequence[Device], suite_path: str | None = None) -> Plan:
    """The jobs: every (model, variant, target, runtime) a board can run, once per power mode of
    the suite (``suite_path``: where an unknown power mode's line is looked up)."""
    jobs: list[Job] = []
    skipped: list[str] = []
    boards: dict[tuple[str, str], tuple[str, ...]] = {}
    check_known(suite, devices, suite_path)
    for target, members in targets(devices).items():
        modes, no_modes = target_modes(suite, target, members)
        skipped += no_modes
        for runtime in suite.runtimes:
            offering = tuple(d.name for d in members if runtime in d.runtimes)
            if not offering:
                skipped.append(f"{target} does not offer {runtime}")
                continue
            boards[(target, runtime)] = offering
            reads = get_runtime(runtime).formats
            block_s, unreadable = interleaved_block(suite, reads)  # the canary inside the window, on the job's runtime
            if unreadable:
                skipped.append(f"the interleaved canary on {target}: {runtime} cannot read its onnx file")
            settings = JobSettings(suite.measure.to_wire(), suite.runtime_options.get(runtime, {}),
                                   suite.measure.repeats, suite.measure.order, canary_block_s=block_s)
            axes = suite.axes.values() if suite.axes is not None else None
            for variant in suite.variants:
                recipes = make_recipes(split_chain(variant), suite.recipes)
                fmt = chain_format(recipes)
                if fmt not in reads:
                    skipped.append(f"{variant}: {runtime} cannot read its {fmt} file (it reads "
                                   f"{', '.join(sorted(reads))})")
                    continue
                if note := _precision_problem(variant, recipes, runtime):
                    skipped.append(note)
                    continue
                allowed = chain_runtimes(recipes)
                if allowed is not None and runtime not in allowed:
                    skipped.append(f"{variant} cannot run on {runtime} (runs on {', '.join(sorted(allowed))})")
                    continue
                for model in suite.models:
                    for mode in modes:
                        for point in expand(replace(settings, power_mode=mode), axes):  # the suite's axes
                            jobs.append(Job(model.label, variant, target, runtime, point))
    if not jobs:
        raise ConfigError("the suite plans no job: " + "; ".join(dict.fromkeys(skipped)))
    if suite.canary:
        jobs += canary_jobs(suite, devices, boards, jobs)
    return Plan(tuple(jobs), tuple(dict.fromkeys(skipped)), tuple(devices), boards)


# Recipe precisions (``Recipe.precision``, as stored with a variant) in the runtimes' spelling
# (``Runtime.precisions``: OpenVINO's).
_RUNTIME_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "int8"}


def _precision_problem(variant: str, recipes: list, runtime: str) -> str | None:
    """Why ``runtime`` cannot execute the precision the chain makes, or None when it can (or
    its class lists no precisions)."""
    runs = get_runtime(runtime).precisions
    made = chain_precision(recipes)
    need = _RUNTIME_PRECISION.get(made, made)
    if not runs or need in runs:
        return None
    return f"{variant}: {runtime} cannot execute its {need} precision (it runs {', '.join(sorted(runs))})"
