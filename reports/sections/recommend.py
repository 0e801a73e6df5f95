"""Recommendations: per device and model, the most accurate variant that fits the budget.

Why per (device, model) rather than per device alone: accuracies of different models are
measured on different eval sets and do not compare; a device runs one of them, so the
question is "which variant (and runtime) of this model do I ship on this board".

The rule, written once in :func:`recommend`: a job fits when its p50 is at most the
latency budget and, when an energy budget is given, its energy per inference is measured
and at most that budget; with a p99 budget its p99 is at most that, and with a throughput
floor (``report: {min_throughput: 30}``) its throughput is at least that and, for a paced
result, the board kept up with the rate. Every operating point of a variant (scenario, axes'
values: ``point``) is a job of its own, so "the most accurate variant that sustains 30 FPS under
50 ms p99" is the most accurate variant with any point that fits; the page names the point. Among the fitting jobs the highest accuracy wins; ties go to the
lower p50, then to the variant and runtime names (so the page is deterministic). A model
without an eval set has no accuracy to rank by: its fastest fitting job is shown and
marked so. When nothing fits, the row says so and names the fastest job, the closest miss.
The board canary (``reports.canary``) is never a candidate, nor a result marked degraded
(its variant's outputs past the suite's fidelity limit) unless its measured accuracy vouches for
it (``reports.fidelity``); a note under the table names each one left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import fidelity, fmt, marks
from reports.budget import Budget
from reports.filters import data_attrs
from reports.fronts import point_label
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.sections.results import THROTTLED_BADGE
from reports.table import Cell, Row, html_table

__all__ = ["RecommendSection", "recommend"]

_HINT = (
    '<p class="note">Give a budget to get a recommendation per device: '
    "<code>harness report --budget-ms 20 [--budget-mj 50]</code>, or in the suite "
    "<code>report: {latency_budget_ms: 20, energy_budget_mj: 50}</code>.</p>"
)


def _fits(ok: pd.DataFrame, budget: Budget) -> pd.Series:
    """The fit rule of the module docstring, vectorised."""
    p50, energy = ok["p50_ms"].to_numpy(dtype=float), ok["energy_mj"].to_numpy(dtype=float)
    fits = np.isfinite(p50)
    if budget.latency_ms is not None:
        fits &= p50 <= budget.latency_ms
    if budget.energy_mj is not None:
        fits &= np.isfinite(energy) & (energy <= budget.energy_mj)
    if budget.p99_ms is not None:
        p99 = ok["p99_ms"].to_numpy(dtype=float)
        fits &= np.isfinite(p99) & (p99 <= budget.p99_ms)
    if budget.min_throughput is not None:
        throughput = ok["throughput"].to_numpy(dtype=float)
        paced = (ok["scenario"] == "paced").to_numpy(dtype=bool)
        kept = ok["kept_up"].fillna(False).astype(bool).to_numpy()
        fits &= np.isfinite(throughput) & (throughput >= budget.min_throughput) & (~paced | kept)
    return pd.Series(fits, index=ok.index)


def recommend(ok: pd.DataFrame, budget: Budget) -> pd.DataFrame:
    """The pick per (device, model) of ``ok`` (ok jobs only) under ``budget``.

    Returns:
        One row per (device, model) present in ``ok``, sorted by both: the pick's columns
        (all of ``ok``'s), plus ``fits`` (False: nothing fits; the row then holds the fastest
        job, the closest miss) and ``ranked_by_accuracy`` (False: no accuracy was measured).
    """
    keys = ["device", "model"]
    ranked = ok.assign(
        fits=_fits(ok, budget),
        _acc=(ok["quality"].fillna(ok["accuracy"]) if "quality" in ok else ok["accuracy"]).fillna(-np.inf),  # task metric
        _p50=ok["p50_ms"].fillna(np.inf),
    )
    order = ["device", "model", "fits", "_acc", "_p50", "variant", "runtime"]
    ranked = ranked.sort_values(order, ascending=[True, True, False, False, True, True, True],
                                kind="stable")  # fmt: skip
    picks = ranked.groupby(keys, sort=True).head(1)
    # A miss row names the fastest job, not the most accurate one.
    misses = ranked.sort_values([*keys, "_p50", "variant", "runtime"], kind="stable").groupby(keys).head(1)
    picks = picks.set_index(keys)
    misses = misses.set_index(keys)
    no_fit = ~picks["fits"]
    picks = pd.concat([picks[~no_fit], misses.loc[picks.index[no_fit]]]).sort_index()
    picks["ranked_by_accuracy"] = np.isfinite(picks["_acc"])
    return picks.drop(columns=["_acc", "_p50"]).reset_index()


def _budget_text(budget: Budget) -> str:
    """The limits applied and where each came from (command line or suite), escaped."""
    parts = []
    if budget.latency_ms is not None:
        parts.append(f"p50 \u2264 {fmt.ms(budget.latency_ms)} ({fmt.esc(budget.latency_source)})")
    if budget.energy_mj is not None:
        parts.append(f"energy per inference \u2264 {fmt.mj(budget.energy_mj)} ({fmt.esc(budget.energy_source)})")
    if budget.p99_ms is not None:
        parts.append(f"p99 \u2264 {fmt.ms(budget.p99_ms)} (suite)")
    if budget.min_throughput is not None:
        parts.append(f"throughput \u2265 {budget.min_throughput:g} inferences/s, paced results keeping up (suite)")
    return " and ".join(parts)


def _pick_cells(rec: dict) -> tuple[Cell, ...]:
    """Variant, runtime and numbers of a pick, or the "none fits" sentence and the closest miss."""
    numbers = (Cell(fmt.ms(rec["p50_ms"]), True), Cell(fmt.pct(rec["accuracy"]), True),
               Cell(fmt.mj(rec["energy_mj"]), True))  # fmt: skip
    badge = f" {THROTTLED_BADGE}" if rec["throttled"] is True else ""
    mark = marks.badges(rec)
    badge += f" {mark}" if mark else ""
    if not rec["fits"]:
        miss = (f'<span class="failed">none fits</span>; fastest: {fmt.esc(point_label(rec))} on '
                f"{fmt.esc(rec['runtime'])}{badge}")  # fmt: skip
        return (Cell(miss), Cell(""), *numbers)
    note = "" if rec["ranked_by_accuracy"] else ' <span class="note">(no accuracy: fastest)</span>'
    return (Cell(f"<b>{fmt.esc(point_label(rec))}</b>{note}{badge}"), Cell(fmt.esc(rec["runtime"])), *numbers)


class RecommendSection(ReportSection):
    """The most accurate variant per device and model within the budget."""

    name = "recommend"
    title = "Recommendations"
    order = 17

    def render(self, ctx: ReportContext) -> SectionOutput:
        """A hint when no budget is set; else one row per (device, model)."""
        budget = ctx.budget
        if budget is None or budget.empty:
            return SectionOutput((_HINT,) if len(ctx.measured) else ())
        ok, left_out = ctx.candidates, ctx.left_out
        all_pairs = ctx.measured[["device", "model"]].drop_duplicates()
        picks = recommend(ok, budget) if len(ok) else ok.assign(fits=False, ranked_by_accuracy=False)
        picks = all_pairs.merge(picks, on=["device", "model"], how="left").sort_values(["device", "model"])
        rows = []
        for rec in picks.to_dict("records"):
            ident = (Cell(fmt.esc(rec["device"])), Cell(fmt.esc(rec["model"])))
            if fmt.is_missing(rec.get("fits")):
                only_degraded = bool(((left_out["device"] == rec["device"])
                                      & (left_out["model"] == rec["model"])).any())
                text = "only degraded results (see the note)" if only_degraded else "no successful job"
                cells = (*ident, Cell(f'<span class="failed">{text}</span>'), Cell(""),
                         *(Cell(fmt.MISSING, True) for _ in range(3)))  # fmt: skip
            else:
                cells = (*ident, *_pick_cells(rec))
            rows.append(Row(cells, attrs=data_attrs(device=rec["device"], model=rec["model"])))
        intro = (f'<p class="note">Budget: {_budget_text(budget)}. The most accurate fitting '
                 "variant per device and model; ties go to the lower p50.</p>")  # fmt: skip
        headers = [("Device", False), ("Model", False), ("Variant", False), ("Runtime", False),
                   ("p50", True), ("Accuracy", True), ("Energy/inf", True)]  # fmt: skip
        note = fidelity.left_out_note(left_out)
        return SectionOutput((intro, html_table(headers, rows, css="recommend"), *filter(None, [note])))

