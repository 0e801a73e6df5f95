"""Failures: boards that ended the run down, and the jobs that did not finish, each with its reason.

Why a separate section when the results table already shows errors: with dozens of jobs,
failures deserve a short list near the top of the reader's attention, grouped by reason
so that one cause hitting many jobs (an unreachable board) reads as one problem.
Omitted entirely when everything succeeded.
"""

from __future__ import annotations

from reports import fmt
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput
from reports.table import Cell, Row, html_table

__all__ = ["FailuresSection"]

NO_REASON = "no error recorded"


def error_html(error: object) -> str:
    """First line of an error in full; the rest (tracebacks) folded in ``<details>``."""
    if fmt.is_missing(error) or not str(error).strip():
        return f'<span class="note">{NO_REASON}</span>'
    text = str(error).strip()
    first, _, rest = text.partition("\n")
    head = f"<code>{fmt.esc(first)}</code>"
    if not rest.strip():
        return head
    return f"{head}<details><summary>details</summary><pre>{fmt.esc(rest)}</pre></details>"


class FailuresSection(ReportSection):
    """Failed jobs and their reasons."""

    name = "failures"
    title = "Failures"
    order = 15

    def render(self, ctx: ReportContext) -> SectionOutput:
        """Boards that ended the run down, then a table of failed jobs, most frequent first line of error first."""
        failed = ctx.failed
        down = ctx.run_info.get("down") or {}
        parts = [_down_html(down)] if down else []
        if failed.empty:
            return SectionOutput(tuple(parts))
        df = failed.assign(
            _first=[
                str(e).strip().partition("\n")[0] if not fmt.is_missing(e) else ""
                for e in failed["error"]
            ]
        )
        df = df.assign(_count=df.groupby("_first")["_first"].transform("size"))
        df = df.sort_values(
            ["_count", "_first", "device", "model", "variant", "runtime"],
            ascending=[False, True, True, True, True, True],
            kind="stable",
        )
        rows = [
            Row(
                (
                    Cell(fmt.esc(r["device"])),
                    Cell(fmt.esc(r["model"])),
                    Cell(fmt.esc(r["variant"])),
                    Cell(fmt.esc(r["runtime"])),
                    Cell(error_html(r["error"]), css="error"),
                ),
                attrs=data_attrs(device=r["device"], model=r["model"], runtime=r["runtime"]),
            )
            for r in df.to_dict("records")
        ]
        n_reasons = df["_first"].nunique()
        intro = f'<p class="note">{len(df)} job(s) failed with {n_reasons} distinct reason(s).</p>'
        headers = [("Device", False), ("Model", False), ("Variant", False),
                   ("Runtime", False), ("Reason", False)]  # fmt: skip
        return SectionOutput((*parts, intro, html_table(headers, rows, css="failures")))


def _down_html(down: dict[str, str]) -> str:
    items = "".join(f"<li><b>{fmt.esc(board)}</b>: {error_html(reason)}</li>" for board, reason in sorted(down.items()))
    return f'<p class="note">{len(down)} board(s) ended the run down:</p><ul class="down">{items}</ul>'

