"""Everything a page needs from the store, read in one place: :func:`load_context`.

Why here and not in the CLI: sections never open the store (``reports.sections.base``),
so what a page shows is decided by what its :class:`ReportContext` carries. A run page
needs, besides the run's results, its facts and budget, the latest gate's verdicts of the
run and the per-repeat rows; a dashboard adds the tag's history. Reading them here keeps
the CLI to one call and every reader of the store in view of the reports package.
"""

from __future__ import annotations

from typing import Any

from reports.budget import resolve_budget
from reports.history import load_history
from reports.sections.base import ReportContext

__all__ = ["load_context"]


def load_context(store: Any, run_id: str, *, history_tag: str | None = None, budget_ms: float | None = None,
                 budget_mj: float | None = None) -> ReportContext:  # fmt: skip
    """The context of run ``run_id``'s page, or with ``history_tag`` of the tag's dashboard ending at it.

    Args:
        store: an open ``harness.store.Store``.
        run_id: a resolved run id.
        history_tag: the tag whose runs make the dashboard; None for a run page.
        budget_ms: ``--budget-ms`` (overrides the suite's ``report.latency_budget_ms``).
        budget_mj: ``--budget-mj`` (overrides the suite's ``report.energy_budget_mj``).
    """
    info = store.run_info(run_id)
    return ReportContext(
        results=store.results(run=run_id),
        run_info=info,
        facts=store.facts(run_id),
        budget=resolve_budget(info, budget_ms, budget_mj),
        history=load_history(store, history_tag, until=run_id) if history_tag else None,
        verdicts=store.verdicts(run=run_id),
        repeats=store.repeats(run=run_id),
    )
