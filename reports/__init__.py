"""Self-contained HTML reports of benchmark runs.

``render_report(ReportContext(results, run_info, facts))`` returns one HTML page that
works offline; ``write_report`` writes it atomically. Sections live in
``reports.sections`` and are listed in its ``SECTIONS`` table.
"""

from __future__ import annotations

from reports.html import render_report, write_report
from reports.pareto import pareto_front
from reports.sections import SECTIONS, ReportContext, ReportError, ReportSection, SectionOutput

__all__ = [
    "SECTIONS",
    "ReportContext",
    "ReportError",
    "ReportSection",
    "SectionOutput",
    "pareto_front",
    "render_report",
    "write_report",
]
