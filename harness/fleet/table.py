"""The terminal table of ``harness inventory check``: one row per device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from harness.fleet.check import DeviceCheck
from harness.fleet.leases import lease_text

COLUMNS = ("device", "kind", "ok", "rtt ms", "arch", "OS", "kernel", "CPU", "cores", "RAM", "python/numpy",
           "runtimes", "governor", "thermal", "power sensors", "lease")


def check_table(checks: Sequence[DeviceCheck]) -> Table:
    table = Table(*COLUMNS)
    for c in checks:
        host: dict[str, Any] = c.facts.get("host") or {}
        table.add_row(*(escape(cell) for cell in _cells(c, host)))
    return table


def _cells(c: DeviceCheck, host: dict[str, Any]) -> list[str]:
    ram = host.get("ram_mib")
    zones = host.get("thermal_zones")
    py = host.get("python") or c.facts.get("python")
    np_ = host.get("numpy") or c.facts.get("numpy")
    return [
        c.name, c.kind, "yes" if c.ok else "NO",
        "-" if c.rtt_ms is None else f"{c.rtt_ms:.1f}",
        _s(host.get("arch") or c.facts.get("machine")), _s(host.get("os")), _s(host.get("kernel")),
        _s(host.get("jetson_model") or host.get("cpu_model")), _s(host.get("cores") or c.facts.get("cpu_count")),
        "-" if ram is None else f"{ram / 1024:.1f} GiB",
        "-" if not c.facts else f"{_s(py)} / {_s(np_)}",
        runtimes_cell(c.runtimes), _s(host.get("governor")),
        "-" if zones is None else str(len(zones)), sensors_cell(host.get("power_sensors")), lease_text(c.lease),
    ]


def runtimes_cell(runtimes: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, info in runtimes.items():
        if not info.get("available"):
            parts.append(f"{name} (missing)")
            continue
        devices = ",".join(str(d).removesuffix("ExecutionProvider") for d in info.get("devices") or ())
        library = f" ({info['library']})" if info.get("library") else ""
        parts.append(f"{name} {_short_version(info.get('version'))}{library}" + (f" [{devices}]" if devices else ""))
    return "\n".join(parts) or "-"


def sensors_cell(sensors: Any) -> str:
    if not sensors:
        return "-"
    names = []
    for s in sensors:
        label = s.get("label") if s.get("source") == "rapl" else None
        name = f"{s.get('name')}({label})" if label else str(s.get("name"))
        names.append(name + (" (no read)" if s.get("readable") is False else ""))
    return ", ".join(names)


def _short_version(version: Any) -> str:
    return "?" if not version else str(version).split("-")[0]


def _s(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)
