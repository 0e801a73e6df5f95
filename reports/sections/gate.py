"""The release gate's verdicts for this run: what ``harness gate`` decided, regressions first.

Why on the run page too (the history page already marks regressions on its trends): the
run page is what a CI job links to after a nightly sweep, and the gate's decision is its
headline. The table is the latest gate of the run (``Store.verdicts(run=...)``): one row
per (configuration, metric) with the verdict, the change (relative, or points for
accuracy), its 95% CI, the limit and the gate's note. Findings (anything but "pass") lead,
in the gate's own order (regression, missing, board-drift, inconclusive, improvement);
the passes are folded underneath, since a healthy run has hundreds of them.

A dashboard built without the run's verdicts (``ReportContext.verdicts`` None) takes its
latest run's from the history; a run page without them omits the section.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from devices.agent import metrics
from reports import fmt
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["VERDICT_ORDER", "GateSection", "change_text", "limit_text"]

#: Page order of the verdicts (the gate's terminal order); unknown verdicts come after these.
VERDICT_ORDER: tuple[str, ...] = ("regression", "missing", "board-drift", "inconclusive", "improvement", "pass")
_CSS = {"regression": "regression", "improvement": "improvement", "missing": "missing", "board-drift": "drift"}


def change_text(metric: str, ratio: Any) -> str:
    """The gate's ratio as a change: ``+6.5 %`` (candidate/baseline), ``-0.80 pts`` for accuracy."""
    points = metrics.BY_GATE[metric].points
    if fmt.is_missing(ratio):
        return fmt.MISSING
    return metrics.change_text(float(ratio) if points else float(ratio) - 1, points, fmt.MISSING)


def limit_text(metric: str, threshold: Any) -> str:
    """The rule's limit: ``+5 %`` more latency, ``-1 pts`` of accuracy."""
    return fmt.MISSING if fmt.is_missing(threshold) else metrics.limit_text(threshold, metrics.BY_GATE[metric].points)


def _verdicts(ctx: ReportContext) -> pd.DataFrame | None:
    if ctx.verdicts is not None:
        return ctx.verdicts
    history = ctx.history
    if history is None:
        return None
    return history.verdicts[history.verdicts["candidate"] == history.latest]


def _ordered(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Findings first in :data:`VERDICT_ORDER`, then by configuration and metric (vectorised)."""
    rank = verdicts["verdict"].astype(str).map({v: i for i, v in enumerate(VERDICT_ORDER)})
    keys = ["_rank", "_verdict", "device", "model", "variant", "runtime", "metric"]
    out = verdicts.assign(_rank=rank.fillna(len(VERDICT_ORDER)), _verdict=verdicts["verdict"].astype(str))
    for col in ("device", "model", "variant", "runtime", "metric"):
        out[col] = out[col].astype(str)
    return out.sort_values(keys, kind="stable").drop(columns=["_rank", "_verdict"])


def _row(rec: dict[str, Any]) -> Row:
    metric, verdict = str(rec["metric"]), str(rec["verdict"])
    ci = fmt.MISSING
    if not (fmt.is_missing(rec["ci_lo"]) or fmt.is_missing(rec["ci_hi"])):
        ci = f"[{change_text(metric, rec['ci_lo'])}, {change_text(metric, rec['ci_hi'])}]"
    q = rec.get("q")
    variant, point = str(rec["variant"]), rec.get("point")
    if isinstance(point, str) and point and not variant.endswith(f" @ {point}"):
        variant = f"{variant} @ {point}"  # the operating point the verdict is about (the history's names it already)
    cells = (
        Cell(f"<b>{fmt.esc(verdict)}</b>", css=_CSS.get(verdict, "")),
        Cell(fmt.esc(rec["device"])), Cell(fmt.esc(rec["model"])), Cell(fmt.esc(variant)),
        Cell(fmt.esc(rec["runtime"])), Cell(fmt.esc(metric)),
        Cell(change_text(metric, rec["ratio"]), numeric=True), Cell(ci, numeric=True),
        Cell(limit_text(metric, rec["threshold"]), numeric=True),
        Cell(fmt.MISSING if fmt.is_missing(q) else f"{float(q):.3g}", numeric=True),
        Cell("" if fmt.is_missing(rec.get("note")) else fmt.esc(rec["note"])),
    )  # fmt: skip
    attrs = data_attrs(device=str(rec["device"]), model=str(rec["model"]), runtime=str(rec["runtime"]))
    return Row(cells, css="has-regression" if verdict == "regression" else "", attrs=attrs)


_HEADERS = [("Verdict", False), ("Device", False), ("Model", False), ("Variant", False), ("Runtime", False),
            ("Metric", False), ("Change", True), ("95% CI", True), ("Limit", True), ("q", True),
            ("Note", False)]  # fmt: skip


def _headline(verdicts: pd.DataFrame, run: Any) -> str:
    """Which gate, when, against what, and the counts per verdict (escaped)."""
    counts = verdicts["verdict"].astype(str).value_counts()
    known = [v for v in VERDICT_ORDER if v in counts.index] + sorted(set(counts.index) - set(VERDICT_ORDER))
    parts = ", ".join(f"{int(counts[v])} {v}" for v in known)
    text = f"The release gate's verdicts for run {run}: {parts}."
    gate_id = verdicts["gate_id"].dropna()
    if len(gate_id):
        text = f"Gate {gate_id.iloc[0]} ({_when(verdicts['created'].dropna())}) judged run {run}: {parts}."
    if "baselines" in verdicts.columns:
        baselines = verdicts["baselines"].dropna()
        if len(baselines) and isinstance(baselines.iloc[0], (list, tuple)) and len(baselines.iloc[0]):
            text += f" Baseline run(s): {', '.join(str(b) for b in baselines.iloc[0])}."
    return f'<p class="note">{fmt.esc(text)}</p>'


def _when(created: pd.Series) -> str:
    if created.empty:
        return "time unknown"
    try:
        return pd.Timestamp(float(created.iloc[0]), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return str(created.iloc[0])


class GateSection(ReportSection):
    """The latest gate's verdicts of the report's run."""

    name = "gate"
    title = "Release gate"
    order = 12

    def render(self, ctx: ReportContext) -> SectionOutput:
        """A headline, the findings, and the passes folded; omitted without verdicts."""
        verdicts = _verdicts(ctx)
        if verdicts is None or verdicts.empty:
            return SectionOutput()
        run = ctx.history.latest if ctx.verdicts is None and ctx.history is not None else ctx.run_info.get("id")
        ordered = _ordered(verdicts)
        passed = ordered["verdict"].astype(str) == "pass"
        blocks = [_headline(verdicts, run)]
        findings = ordered[~passed]
        if len(findings):
            blocks.append(html_table(_HEADERS, [_row(r) for r in findings.to_dict("records")], css="gate"))
        else:
            blocks.append('<p class="note">Every verdict is a pass.</p>')
        if passed.any():
            rows = [_row(r) for r in ordered[passed].to_dict("records")]
            blocks.append(f"<details><summary>{int(passed.sum())} pass</summary>"
                          f"{html_table(_HEADERS, rows, css='gate')}</details>")  # fmt: skip
        return SectionOutput(tuple(blocks))
