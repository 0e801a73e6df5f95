"""The board canary of this run: per board, its first and last p50 and their ratio.

Why: every number of a sweep was measured on a board that may have changed while the
sweep ran (it warmed up, a governor moved the clocks, another tenant arrived). The suite's
``canary: true`` measures one fixed model on every board first and last; if the two agree,
the board was the same board throughout, and if the last is slower, everything measured in
between carries some of that drift. A drift beyond :data:`reports.canary.DRIFT_WARN`
either way is highlighted. The canary's rows also stay in the results table; they never
enter a front, a recommendation or the run-to-run comparison.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports import fmt, marks
from reports.canary import CANARY_NAME, DRIFT_WARN, canary_pairs
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["CanarySection", "drift_text"]

_INTRO = (
    "The board canary: one fixed built-in model (stored as model \"{model}\") measured first "
    "and last on every board of the sweep. Last/first is the board's drift during the run; "
    "beyond \u00b1{warn:.0f} % it is highlighted, and every result measured on that board in "
    "between shares some of it."
)


def drift_text(ratio: Any) -> str:
    """``\u00d71.031 (+3.1 %)``, or the missing mark."""
    if fmt.is_missing(ratio):
        return fmt.MISSING
    r = float(ratio)
    return f"\u00d7{r:.3f} ({(r - 1) * 100:+.1f} %)"


def _when(value: Any) -> str:
    if fmt.is_missing(value):
        return ""
    return pd.Timestamp(float(value), unit="s", tz="UTC").strftime("%H:%M:%S UTC")


def _end_cell(rec: dict[str, Any], end: str) -> Cell:
    """One end's p50 with its start time under it, marks and a failed status said."""
    status = rec.get(f"{end}_status")
    if not fmt.is_missing(status) and str(status) != "ok":
        return Cell(f'<span class="failed">{fmt.esc(status)}</span>')
    text = fmt.ms(rec[f"{end}_p50_ms"])
    when = _when(rec.get(f"{end}_started"))
    if when:
        text += f"<br><small>{when}</small>"
    badges = marks.badges({m.column: rec.get(f"{end}_{m.column}") for m in marks.MARKS})
    return Cell(f"{text} {badges}".strip(), numeric=True)


class CanarySection(ReportSection):
    """First and last canary of each board; omitted when the suite ran no canary."""

    name = "canary"
    title = "Board canary"
    order = 16

    def render(self, ctx: ReportContext) -> SectionOutput:
        """One row per board that ran the canary."""
        pairs = canary_pairs(ctx.results)
        if pairs.empty:
            return SectionOutput()
        rows = []
        for rec in pairs.to_dict("records"):
            drift = rec["drift"]
            far = not fmt.is_missing(drift) and abs(float(drift) - 1) > DRIFT_WARN
            note = "" if rec["n"] >= 2 else '<span class="note">one canary job: no last to compare</span>'
            cells = (
                Cell(fmt.esc(rec["device"])), Cell(fmt.esc(rec["runtime"])),
                _end_cell(rec, "first"), _end_cell(rec, "last"),
                Cell(drift_text(drift) + note, numeric=True, css="regression" if far else ""),
            )  # fmt: skip
            attrs = data_attrs(device=str(rec["device"]), model=CANARY_NAME, runtime=str(rec["runtime"]))
            rows.append(Row(cells, css="has-regression" if far else "", attrs=attrs))
        headers = [("Board", False), ("Runtime", False), ("First p50", True), ("Last p50", True),
                   ("Last / first", True)]  # fmt: skip
        intro = _INTRO.format(model=CANARY_NAME, warn=DRIFT_WARN * 100)
        return SectionOutput((f'<p class="note">{fmt.esc(intro)}</p>', html_table(headers, rows, css="canary")))
