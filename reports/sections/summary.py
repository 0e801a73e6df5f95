"""Summary: what ran, where, and how much of it worked.

First on the page because the reader's first question is "did the run complete?": it
shows the run's metadata, ok/failed counts, and per-device job counts. The second is
"can I trust the numbers?", so it also counts the results measured on a throttled board
and those marked unstable or noisy (the reasons in the line's tooltip).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports import fmt, marks
from reports.filters import data_attrs
from reports.sections.base import ReportContext, ReportSection, SectionOutput, throttled_mask
from reports.table import Cell, Row, html_table, key_value_table

__all__ = ["SummarySection"]

_RUN_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "Run id"),
    ("tag", "Tag"),
    ("suite", "Suite"),
    ("started", "Started"),
    ("finished", "Finished"),
    ("host", "Host"),
    ("project_version", "Edge Harness version"),
    ("git_commit", "Git commit"),
)


def _timestamp(value: Any) -> pd.Timestamp | None:
    """The store keeps epoch seconds; older or hand-made run infos may carry ISO strings."""
    if fmt.is_missing(value):
        return None
    try:
        if isinstance(value, (int, float)):
            return pd.Timestamp(value, unit="s", tz="UTC")
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _when(value: Any) -> str:
    ts = _timestamp(value)
    return fmt.esc(value) if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(started: Any, finished: Any) -> str:
    """Wall time of the run, when both ends parse as timestamps."""
    t0, t1 = _timestamp(started), _timestamp(finished)
    if t0 is None or t1 is None:
        return fmt.MISSING
    delta = t1 - t0
    if pd.isna(delta):
        return fmt.MISSING
    total = int(delta.total_seconds())
    sign, total = ("-" if total < 0 else ""), abs(total)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}"


class SummarySection(ReportSection):
    """Run metadata, job counts and the devices involved."""

    name = "summary"
    title = "Summary"
    order = 10

    def render(self, ctx: ReportContext) -> SectionOutput:
        """Two tables: run metadata with counts, then jobs per device."""
        info = ctx.run_info
        items = [(label, _when(info.get(key)) if key in ("started", "finished") else fmt.esc(info.get(key)))
                 for key, label in _RUN_FIELDS]
        items.insert(5, ("Duration", _duration(info.get("started"), info.get("finished"))))
        df = ctx.results
        n_ok, n_failed = len(ctx.ok), len(ctx.failed)
        status = f'<span class="ok">{n_ok} ok</span>'
        if n_failed:
            status += f', <span class="failed">{n_failed} failed</span>'
        items += [
            ("Jobs", f"{len(df)} ({status})"),
            ("Devices", _names(df["device"])),
            ("Models", _names(df["model"])),
            ("Variants", _names(df["variant"])),
            ("Runtimes", _names(df["runtime"])),
        ]
        items += _throttled_item(ctx.ok)
        items += marks.count_item(ctx.ok)
        blocks = [key_value_table(items)]
        if len(df):
            rows = []
            for device, group in df.groupby("device", sort=True):
                ok = int((group["status"] == "ok").sum())
                rows.append(
                    Row(
                        (
                            Cell(fmt.esc(device)),
                            Cell(fmt.integer(len(group)), numeric=True),
                            Cell(fmt.integer(ok), numeric=True),
                            Cell(fmt.integer(len(group) - ok), numeric=True),
                            Cell(fmt.esc(", ".join(sorted(group["runtime"].unique())))),
                        ),
                        css="has-failed" if ok < len(group) else "",
                        attrs=data_attrs(device=str(device)),
                    )
                )
            headers = [("Device", False), ("Jobs", True), ("Ok", True), ("Failed", True),
                       ("Runtimes", False)]  # fmt: skip
            blocks.append(html_table(headers, rows))
        else:
            blocks.append('<p class="note">This run has no results.</p>')
        return SectionOutput(tuple(blocks))


def _throttled_item(ok: pd.DataFrame) -> list[tuple[str, str]]:
    """A "Throttled" line only when some result was throttled; silence means none was."""
    n = int(throttled_mask(ok).sum())
    if not n:
        return []
    text = (f'<span class="throttled">{n} of {len(ok)}</span> ok result(s): the board '
            "throttled or changed clocks during the timed window")  # fmt: skip
    return [("Throttled", text)]


def _names(values: pd.Series) -> str:
    """Distinct names, sorted, escaped, with a count when there are several."""
    names = sorted({str(v) for v in values})
    if not names:
        return fmt.MISSING
    text = ", ".join(fmt.esc(n) for n in names)
    return f"{len(names)}: {text}" if len(names) > 1 else text
