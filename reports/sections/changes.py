"""Run-to-run comparison: the tag's latest run against the run before it, per configuration.

Why this table next to the trends: the morning question is "what changed last night", and
a chart of a year hides a one-night step. Each metric cell shows the latest value and the
change from the previous run (relative, or points for accuracy); the previous value is in
the cell's tooltip. Colour comes only from the gate's stored verdict for the latest run
(red regression, green improvement): a raw change of a few percent on a noisy board is
not a finding, and the table must not suggest otherwise. Configurations with a regression
come first; new, failed and vanished configurations say so in the status column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# A module import, read at render time: reports.history imports reports.sections.base, so a
# name import here would make the import order of the two packages matter.
import reports.history as hist
from devices.agent import metrics
from reports import fmt
from reports.axes import TREND_AXES, Axis
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

if TYPE_CHECKING:
    from reports.history import HistoryData

__all__ = ["ChangesSection", "change_text"]

_VERDICT_CSS = {"regression": "regression", "improvement": "improvement"}
_OPEN_UP_TO = 40  # rows shown unfolded when no configuration regressed


def change_text(value: Any, axis: Axis) -> str:
    """A change as text: ``+6.5 %`` for relative metrics, ``-0.80 pts`` for accuracy."""
    return fmt.MISSING if fmt.is_missing(value) else metrics.change_text(value, not axis.relative, fmt.MISSING)


def _status(rec: dict[str, Any]) -> str:
    """What happened to the configuration between the two runs, in a few words."""
    if not rec["in_previous"]:
        return "new"
    if not rec["in_latest"]:
        return "not run"
    if not rec["ok_latest"]:
        return '<span class="failed">failed</span>'
    return "ok" if rec["ok_previous"] else "recovered"


def _metric_cell(rec: dict[str, Any], axis: Axis) -> Cell:
    """Latest value, the change below it, the previous value in the tooltip, verdict colour."""
    col = axis.column
    latest, change = axis.format(rec[f"{col}_latest"]), change_text(rec[f"{col}_change"], axis)
    verdict = rec[f"{col}_verdict"]
    css = "" if fmt.is_missing(verdict) else _VERDICT_CSS.get(str(verdict), "")
    title = f"previous: {axis.format(rec[f'{col}_previous'])}"
    if not fmt.is_missing(verdict):
        title += f"; gate: {verdict}"
    text = latest if change == fmt.MISSING else f"{latest}<br><small>{change}</small>"
    return Cell(text, numeric=True, css=css, attrs=f' title="{fmt.esc(title)}"')


def _headline(history: HistoryData, n_configs: int, n_regressed: int) -> str:
    """Which two runs are compared, and whether the gate judged the latest one at all."""
    has_gate = bool((history.verdicts["candidate"] == history.latest).any())
    gate = (f"the gate found {n_regressed} configuration(s) with a regression"
            if has_gate else "no gate verdicts stored for the latest run")  # fmt: skip
    text = (f"Latest run {history.latest} against the previous run {history.previous} of tag "
            f"{history.tag}: {n_configs} configuration(s); {gate}.")  # fmt: skip
    return f'<p class="note">{fmt.esc(text)}</p>'


class ChangesSection(ReportSection):
    """Latest vs previous run of the tag; omitted from a single run's page."""

    name = "changes"
    title = "Since the previous run"
    order = 18

    def render(self, ctx: ReportContext) -> SectionOutput:
        """One row per configuration seen in either run."""
        history = ctx.history
        if history is None:
            return SectionOutput()
        if history.previous is None:
            text = f"Only one run of tag {history.tag}: nothing to compare yet."
            return SectionOutput((f'<p class="note">{fmt.esc(text)}</p>',))
        frame = hist.compare_latest(history)
        rows = []
        for rec in frame.to_dict("records"):
            cells = (
                Cell(fmt.esc(rec["device"])), Cell(fmt.esc(rec["model"])),
                Cell(fmt.esc(rec["variant"])), Cell(fmt.esc(rec["runtime"])), Cell(_status(rec)),
                *(_metric_cell(rec, axis) for axis in TREND_AXES),
                Cell(fmt.integer(rec["regressions"]) if rec["regressions"] else "", numeric=True),
            )  # fmt: skip
            attrs = data_attrs(device=rec["device"], model=rec["model"], runtime=rec["runtime"])
            rows.append(Row(cells, css="has-regression" if rec["regressions"] else "", attrs=attrs))
        headers = [("Device", False), ("Model", False), ("Variant", False), ("Runtime", False),
                   ("Status", False), *((fmt.esc(a.title), True) for a in TREND_AXES),
                   ("Gate regressions", True)]  # fmt: skip
        n_regressed = int((frame["regressions"] > 0).sum())
        # A long table is folded so the trends below stay in reach; regressions lead it anyway.
        opened = " open" if len(frame) <= _OPEN_UP_TO or n_regressed else ""
        table = (f"<details{opened}><summary>{len(frame)} configuration(s)</summary>"
                 f'{html_table(headers, rows, css="changes")}</details>')  # fmt: skip
        return SectionOutput((_headline(history, len(frame), n_regressed), table))
