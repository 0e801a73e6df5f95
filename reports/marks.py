"""The noisy, unstable, degraded and synthetic marks of a result: badges for tables, lines for hovers, counts.

Why their own module: a mark is a warning about a number, and the reader must meet it
wherever the number is shown (the results table, the Pareto hover, the summary's count)
with the same word and the same reason. The store keeps each mark as the reason text
(NULL when there is no mark); the reason comes from the board (or from the coordinator's
fold of several repeats, "2/5 repeats unstable: ..."), so it is user text and is escaped
here, once per output: :func:`reports.fmt.esc` into a ``title`` attribute,
:func:`reports.fmt.plot_text` into plotly hover text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports import fmt

__all__ = ["MARKS", "WINDOW_MARKS", "Mark", "badges", "count_item", "hover_lines", "marked_mask", "normalise"]

#: A reason longer than this is cut in hover text (the table's tooltip keeps all of it).
_HOVER_CHARS = 120


@dataclass(frozen=True)
class Mark:
    """One kind of mark: its results column (the reason, or missing) and what it means."""

    column: str
    meaning: str


MARKS: tuple[Mark, ...] = (
    Mark("unstable", "the timed window's spread is too large (CV over 2.5 % per trtexec, or pyperf's rules)"),
    Mark("noisy", "the board was busy just before the timed window"),
    Mark("degraded", "the variant's outputs are past the suite's fidelity limit against its reference model's"),
    Mark("synthetic", "the variant was calibrated or trained on seeded synthetic inputs, not on real data (the "
                      "model has no 'calib:' or 'train:' data): its quality says little about real inputs"),
)
#: The marks about a timed window (not about the variant): the fronts ring these points.
WINDOW_MARKS: tuple[str, ...] = ("unstable", "noisy")


def normalise(values: pd.Series) -> pd.Series:
    """Reasons as stripped text, object dtype; blank, missing or false-like values as None."""
    text = values.astype("string").str.strip()
    empty = text.isna() | text.isin(["", "0", "false", "False", "None", "nan"])
    return text.astype(object).where(~empty, None)


def marked_mask(df: pd.DataFrame, column: str | tuple[str, ...] | None = None) -> pd.Series:
    """True where the row carries ``column``'s mark (any of them, for a tuple), or any mark when
    ``column`` is None."""
    columns = [m.column for m in MARKS] if column is None else [column] if isinstance(column, str) else list(column)
    mask = pd.Series(False, index=df.index)
    for c in columns:
        if c in df.columns:
            mask |= df[c].notna()
    return mask


def badges(rec: Mapping[str, Any]) -> str:
    """Escaped badges of one result (``""`` without marks), each with its reason as tooltip."""
    out = []
    for mark in MARKS:
        reason = rec.get(mark.column)
        if not fmt.is_missing(reason):
            out.append(f'<span class="badge {mark.column}" title="{fmt.esc(f"{mark.column}: {reason}")}">'
                       f"{mark.column}</span>")  # fmt: skip
    return " ".join(out)


def hover_lines(rec: Mapping[str, Any]) -> str:
    """Plotly hover lines of one result's marks (``""`` without marks), reasons escaped."""
    out = ""
    for mark in MARKS:
        reason = rec.get(mark.column)
        if fmt.is_missing(reason):
            continue
        text = str(reason)
        if len(text) > _HOVER_CHARS:
            text = text[: _HOVER_CHARS - 1] + "\u2026"
        out += f"<br><b>{mark.column.upper()}</b>: {fmt.plot_text(text)}"
    return out


def count_item(ok: pd.DataFrame) -> list[tuple[str, str]]:
    """A summary line "3 results unstable, 1 noisy" (with the reasons in its tooltip), or none."""
    parts, reasons = [], []
    for mark in MARKS:
        if mark.column not in ok.columns:
            continue
        marked = ok[mark.column].dropna()
        if marked.empty:
            continue
        # Most frequent reason first, ties by text: the page stays byte-identical run to run.
        counts = marked.astype(str).value_counts().sort_index().sort_values(ascending=False, kind="stable")
        tip = f"{mark.column}: {mark.meaning}. Reasons: " + "; ".join(
            f"{reason} ({k}\u00d7)" if k > 1 else reason for reason, k in counts.head(10).items()
        )
        if len(counts) > 10:
            tip += f"; and {len(counts) - 10} more"
        reasons.append(tip)
        n = len(marked)
        parts.append(f"{n} {mark.column}" if parts else f"{n} {'result' if n == 1 else 'results'} {mark.column}")
    if not parts:
        return []
    title = fmt.esc("\n".join(reasons))
    text = f'<span class="marks" title="{title}">{", ".join(parts)}</span> (of {len(ok)} ok)'
    return [("Marks", text)]
