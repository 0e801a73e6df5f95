"""Suite x inventory -> jobs.

Impossible pairs (a runtime the device does not offer, a variant the runtime cannot
consume) are dropped here, before anything is built or sent to a board, and reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.config import Device, Suite
from harness.errors import ConfigError
from harness.records import Job
from harness.variants.build import chain_runtimes, make_recipes, split_chain


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    skipped: tuple[str, ...]  # why some combinations were not planned
    devices: tuple[Device, ...]


def select_devices(
    devices: Sequence[Device], suite: Suite, names: Sequence[str] = (), tags: Sequence[str] = ()
) -> tuple[Device, ...]:
    """Devices picked by the suite's selector, narrowed by ``--devices`` / ``--tags``."""
    known = {d.name for d in devices}
    for wanted in (*(suite.devices.names or ()), *names):
        if wanted not in known:
            raise ConfigError(f"unknown device {wanted!r}; the inventory has: {', '.join(sorted(known))}",
                              field="devices")
    sel = suite.devices
    picked = [
        d for d in devices
        if (sel.names is None or d.name in sel.names)
        and (sel.tags is None or set(sel.tags) & set(d.tags))
        and (sel.kinds is None or d.kind in sel.kinds)
        and (not names or d.name in names)
        and (not tags or set(tags) & set(d.tags))
    ]  # fmt: skip
    if not picked:
        raise ConfigError("no device in the inventory matches the suite's 'devices' selection and the CLI filters")
    return tuple(picked)


def make_plan(suite: Suite, devices: Sequence[Device]) -> Plan:
    jobs: list[Job] = []
    skipped: list[str] = []
    for device in devices:
        for runtime in suite.runtimes:
            if runtime not in device.runtimes:
                skipped.append(f"{device.name} does not offer {runtime}")
                continue
            settings = {
                "measure": suite.measure.model_dump(),
                "runtime_options": suite.runtime_options.get(runtime, {}),
            }
            for variant in suite.variants:
                allowed = chain_runtimes(make_recipes(split_chain(variant), suite.recipes))
                if allowed is not None and runtime not in allowed:
                    skipped.append(f"{variant} cannot run on {runtime} (runs on {', '.join(sorted(allowed))})")
                    continue
                for model in suite.models:
                    jobs.append(Job(model.label, variant, device.name, runtime, settings))
    if not jobs:
        raise ConfigError("the suite plans no job: " + "; ".join(dict.fromkeys(skipped)))
    return Plan(tuple(jobs), tuple(dict.fromkeys(skipped)), tuple(devices))
