"""Checks of names against the plugin registries, shared by inventory and suite models.

The registries are imported lazily: they are cheap tables, but config must not pull in
torch or a runtime just to validate a file.
"""

from __future__ import annotations


def check_runtimes(runtimes: tuple[str, ...]) -> tuple[str, ...]:
    from devices.agent.runtimes import RUNTIMES

    for name in runtimes:
        if name not in RUNTIMES:
            raise ValueError(f"unknown runtime {name!r}; known: {', '.join(sorted(RUNTIMES))}")
    if len(set(runtimes)) != len(runtimes):
        raise ValueError("a runtime is listed twice")
    return runtimes
