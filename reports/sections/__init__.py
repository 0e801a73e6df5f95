"""The section registry: the one table that decides what a report contains.

Why an explicit table (not a subclass scan as asv's ``util.iter_subclasses`` does): the
page must not change because some module happened to be imported. Adding a section is
its file plus one line in ``_REGISTERED``; the page shows them in ``order``. The history
sections (changes, trends) render only when the context carries a history, so a run page
and a history dashboard share one registry and one order. Sections whose data a run does
not have (gate verdicts, a canary, repeats) omit themselves.
"""

from __future__ import annotations

from reports.sections.base import (
    RESULT_COLUMNS,
    ReportContext,
    ReportError,
    ReportSection,
    SectionOutput,
)
from reports.sections.canary import CanarySection
from reports.sections.changes import ChangesSection
from reports.sections.facts import FactsSection
from reports.sections.failures import FailuresSection
from reports.sections.gate import GateSection
from reports.sections.operating import OperatingSection
from reports.sections.pareto import ParetoSection
from reports.sections.recommend import RecommendSection
from reports.sections.repeats import RepeatsSection
from reports.sections.results import ResultsSection
from reports.sections.summary import SummarySection
from reports.sections.trends import TrendsSection

__all__ = [
    "RESULT_COLUMNS",
    "SECTIONS",
    "ReportContext",
    "ReportError",
    "ReportSection",
    "SectionOutput",
    "build_registry",
]

_REGISTERED: tuple[type[ReportSection], ...] = (
    SummarySection,
    GateSection,
    FailuresSection,
    CanarySection,
    RecommendSection,
    OperatingSection,
    ChangesSection,
    TrendsSection,
    ParetoSection,
    RepeatsSection,
    ResultsSection,
    FactsSection,
)


def build_registry(classes: tuple[type[ReportSection], ...]) -> dict[str, type[ReportSection]]:
    """Name -> class, in page order (``order``, then name); a duplicate name is an error."""
    registry: dict[str, type[ReportSection]] = {}
    for cls in sorted(classes, key=lambda c: (c.order, c.name)):
        if cls.name in registry:
            raise ReportError(
                f"two report sections are named {cls.name!r} "
                f"({registry[cls.name].__qualname__} and {cls.__qualname__}); rename one"
            )
        registry[cls.name] = cls
    return registry


#: Every section of the run report, keyed by name, in page order.
SECTIONS: dict[str, type[ReportSection]] = build_registry(_REGISTERED)
