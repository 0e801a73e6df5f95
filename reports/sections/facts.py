"""Device facts: the software and hardware each number was measured on.

Why a side-by-side table (facts as rows, devices as columns): results are only comparable
across devices and runs when the runtime versions, Python and platform are known, and
differences stand out when they sit in the same row. Nested facts (``runtimes``:
{name: version}) are flattened to dotted keys so every value gets its own row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reports import fmt
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["FactsSection", "flatten_facts"]


def flatten_facts(facts: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; sequences are joined with commas."""
    out: dict[str, Any] = {}
    for key, value in facts.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            nested = flatten_facts(value, f"{name}.")
            out.update(nested if nested else {name: None})
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
            out[name] = ", ".join(str(v) for v in items)
        else:
            out[name] = value
    return out


class FactsSection(ReportSection):
    """One table of device facts, devices as columns."""

    name = "facts"
    title = "Device facts"
    order = 40

    def render(self, ctx: ReportContext) -> SectionOutput:
        """Facts of every device in ``ctx.facts`` plus devices that only appear in results."""
        devices = sorted(set(ctx.facts) | set(ctx.results["device"]))
        if not devices:
            return SectionOutput()
        if not ctx.facts:
            return SectionOutput(('<p class="note">No device facts were recorded.</p>',))
        flat = {d: flatten_facts(ctx.facts.get(d, {})) for d in devices}
        keys = sorted({k for f in flat.values() for k in f})
        rows = []
        for key in keys:
            values = [flat[d].get(key) for d in devices]
            differs = len({str(v) for v in values}) > 1
            rows.append(
                Row(
                    (Cell(f"<code>{fmt.esc(key)}</code>"), *(Cell(fmt.esc(v)) for v in values)),
                    css="differs" if differs and len(devices) > 1 else "",
                )
            )
        headers = [("Fact", False)] + [(fmt.esc(d), False) for d in devices]
        note = (
            '<p class="note">Rows where devices differ are highlighted.</p>'
            if len(devices) > 1
            else ""
        )
        return SectionOutput((note, html_table(headers, rows, css="facts")))
