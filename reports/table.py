"""Plain HTML tables from already-escaped cells.

Why not ``DataFrame.to_html``: it escapes only when asked, formats numbers without units,
and cannot put a failed job's error on its own full-width row. Here every cell is a
``Cell`` whose text a formatter in ``reports.fmt`` has already escaped, so this module only
assembles markup and adds nothing user-controlled of its own.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Cell", "Row", "html_table", "key_value_table"]


@dataclass(frozen=True)
class Cell:
    """One table cell. ``text`` must already be escaped HTML."""

    text: str
    numeric: bool = False
    css: str = ""
    attrs: str = ""  # already-escaped extra attributes (a title), with a leading space


@dataclass(frozen=True)
class Row:
    """A row of cells, or a full-width ``note`` row (escaped HTML) when ``cells`` is empty.

    ``attrs`` is an already-escaped attribute string (``reports.filters.data_attrs``) that
    lets the page's filters hide the row.
    """

    cells: tuple[Cell, ...] = ()
    css: str = ""
    note: str = ""
    attrs: str = ""


def _cls(*names: str) -> str:
    joined = " ".join(n for n in names if n)
    return f' class="{html.escape(joined)}"' if joined else ""


def html_table(
    headers: Sequence[tuple[str, bool]],
    rows: Iterable[Row],
    css: str = "",
) -> str:
    """Render a table.

    Args:
        headers: (escaped header text, numeric) pairs; numeric columns are right-aligned.
        rows: rows to render; a ``Row`` with a ``note`` spans every column.
        css: extra class for the ``<table>``.

    Returns:
        The table wrapped in a horizontally scrolling ``div``.
    """
    head = "".join(f"<th{_cls('num' if num else '')}>{text}</th>" for text, num in headers)
    body: list[str] = []
    for row in rows:
        if row.note:
            body.append(
                f'<tr{_cls(row.css)}{row.attrs}><td colspan="{len(headers)}">{row.note}</td></tr>'
            )
            continue
        cells = "".join(
            f"<td{_cls('num' if c.numeric else '', c.css)}{c.attrs}>{c.text}</td>" for c in row.cells
        )
        body.append(f"<tr{_cls(row.css)}{row.attrs}>{cells}</tr>")
    return (
        f'<div class="table-wrap"><table{_cls(css)}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def key_value_table(items: Iterable[tuple[str, str]], css: str = "kv") -> str:
    """A two-column table of (escaped key, escaped value) pairs, headers omitted."""
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items)
    return f'<table class="{html.escape(css)}"><tbody>{rows}</tbody></table>'
