"""The suite's power-mode axis, resolved per measurement target (``harness.plan``).

Each name of the suite's ``power_modes`` gets its definition for a target: the suite's own
when it gives one, else the board's (the inventory's ``power_modes``). A pool's boards must
agree on a definition (they are interchangeable boards in the same state). A target whose
boards do not define a name is not measured in that mode (the plan says so); a name no
selected board defines is a config error naming the suite's line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from devices.agent.spec import PowerMode
from harness.config import Device, Suite
from harness.config.power import mode_names
from harness.config.yamlio import line_of, load_yaml
from harness.errors import ConfigError


def target_modes(suite: Suite, target: str, members: Sequence[Device]) -> tuple[list[PowerMode | None], list[str]]:
    """The modes ``target``'s jobs are measured in ([None] without an axis: the board as it is),
    and why some of the suite's modes are not planned on it."""
    names = mode_names(suite.power_modes)
    if not names:
        return [None], []
    own = suite.power_modes if isinstance(suite.power_modes, dict) else {}
    modes: list[PowerMode | None] = []
    skipped: list[str] = []
    for name in names:
        if own.get(name) is not None:
            modes.append(own[name].to_wire(name))
            continue
        defs = {d.name: (d.power_modes or {}).get(name) for d in members}
        found = {n: m for n, m in defs.items() if m is not None}
        if not found:
            skipped.append(f"{target} defines no power mode {name!r} (inventory: power_modes)")
            continue
        if len({m.model_dump_json() for m in found.values()}) > 1:
            raise ConfigError(f"the boards of pool {target!r} define power mode {name!r} differently "
                              f"({', '.join(sorted(found))}); a pool's boards must be interchangeable",
                              field="power_modes")
        modes.append(next(iter(found.values())).to_wire(name))
    return modes, skipped


def check_known(suite: Suite, devices: Sequence[Device], suite_path: str | None = None) -> None:
    """Every mode the suite names without a definition of its own is defined by some selected
    board; else a ConfigError at the name's line of the suite file (when its path is known)."""
    own = suite.power_modes if isinstance(suite.power_modes, dict) else {}
    defined = {name for d in devices for name in (d.power_modes or {})}
    for i, name in enumerate(mode_names(suite.power_modes)):
        if own.get(name) is not None or name in defined:
            continue
        known = ", ".join(sorted(defined)) or "none"
        loc = ("power_modes", name) if isinstance(suite.power_modes, dict) else ("power_modes", i)
        raise ConfigError(f"unknown power mode {name!r}: the suite gives no definition and no selected board defines "
                          f"it in the inventory (they define: {known})", location=_location(suite_path, loc),
                          field=".".join(map(str, loc)))


def _location(path: str | None, loc: tuple[object, ...]) -> str | None:
    if not path:
        return None
    try:
        line = line_of(load_yaml(Path(path)), loc)
    except ConfigError:
        return path
    return f"{path}:{line}" if line else path
