"""Self-contained HTML reports of benchmark runs, and the history dashboard of a tag.

``render_report(ReportContext(results, run_info, facts))`` returns one HTML page that
works offline; ``write_report`` writes it atomically; ``load_context(store, run_id)``
reads everything a page shows (results, facts, the gate's verdicts, repeats) from a store. With
``history=load_history(store, tag)`` the page becomes the tag's dashboard (trends, the
run-to-run comparison, the gate's regressions). Sections live in ``reports.sections`` and
are listed in its ``SECTIONS`` table.
"""

from __future__ import annotations

from reports.budget import Budget, resolve_budget
from reports.context import load_context
from reports.history import HistoryData, load_history
from reports.html import render_report, write_report
from reports.pareto import pareto_front
from reports.sections import SECTIONS, ReportContext, ReportError, ReportSection, SectionOutput

__all__ = [
    "SECTIONS",
    "Budget",
    "HistoryData",
    "ReportContext",
    "ReportError",
    "ReportSection",
    "SectionOutput",
    "load_context",
    "load_history",
    "pareto_front",
    "render_report",
    "resolve_budget",
    "write_report",
]
