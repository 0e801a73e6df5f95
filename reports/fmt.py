"""Value formatting and escaping shared by every section.

Why one module: a number must read the same (unit, precision, missing marker) in the
results table, the hover text and the summary, and every user string must pass through
exactly one of two escapers before it reaches the page:

- :func:`esc` for HTML (tables, headings): ``html.escape`` with quotes.
- :func:`plot_text` for plotly text, hover, titles and legends. plotly.js renders those
  strings through its own mini-HTML parser; it leaves unknown tags as literal text, but it
  only decodes numeric entities and ``&amp; &lt; &gt;`` (not ``&quot;``), so quotes become
  ``&#34;``/``&#39;`` to display correctly, and no raw ``<script>`` ever sits in the file.

Every formatter returns already-escaped HTML-safe text, with :data:`MISSING` for None/NaN.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import pandas as pd

MISSING = "\u2014"  # em dash: visibly "no value", distinct from a real 0

__all__ = [
    "MISSING",
    "Formatter",
    "esc",
    "integer",
    "interval",
    "is_missing",
    "mb",
    "mib",
    "mj",
    "ms",
    "p50_detail",
    "pct",
    "per_s",
    "plain",
    "plot_text",
    "seconds",
    "si",
    "watts",
    "yes_no",
]

Formatter = Callable[[Any], str]


def is_missing(value: Any) -> bool:
    """True for None, NaN, pd.NA and NaT: the store uses all of them for "no value"."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts: present
        return False


def esc(value: Any) -> str:
    """HTML-escape any value for element text or an attribute; missing -> em dash."""
    if is_missing(value):
        return MISSING
    return html.escape(str(value), quote=True)


_PLOT_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})


def plot_text(value: Any) -> str:
    """Escape a value for plotly.js text (see module docstring for why not ``esc``)."""
    if is_missing(value):
        return MISSING
    return str(value).translate(_PLOT_ENTITIES)


def _num(value: Any) -> float | None:
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _adaptive(v: float) -> str:
    """Three or four significant digits without scientific notation (12.3, 0.456, 1234)."""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _unit(value: Any, unit: str, scale: float = 1.0) -> str:
    v = _num(value)
    return MISSING if v is None else f"{_adaptive(v * scale)} {unit}"


def ms(value: Any) -> str:
    """Milliseconds: ``12.3 ms``."""
    return _unit(value, "ms")


def pct(value: Any) -> str:
    """A 0..1 fraction (accuracy, CV) as a percentage: ``0.7613 -> 76.13 %``."""
    v = _num(value)
    return MISSING if v is None else f"{v * 100:.2f} %"


def mib(value: Any) -> str:
    """Bytes in binary units, the way file managers show artifact sizes."""
    v = _num(value)
    if v is None:
        return MISSING
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(v) >= div:
            return f"{_adaptive(v / div)} {unit}"
    return f"{v:.0f} B"


def mb(value: Any) -> str:
    """A value already in megabytes (peak RSS)."""
    return _unit(value, "MB")


def si(value: Any) -> str:
    """Counts such as parameters and MACs: ``3.50 M``, ``1.20 G``."""
    v = _num(value)
    if v is None:
        return MISSING
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.2f} {unit}"
    return f"{v:.0f}"


def per_s(value: Any) -> str:
    """Throughput in inferences per second."""
    return _unit(value, "/s")


def mj(value: Any) -> str:
    """Energy per inference in millijoules."""
    return _unit(value, "mJ")


def watts(value: Any) -> str:
    """Average power in watts."""
    return _unit(value, "W")


def seconds(value: Any) -> str:
    """Durations such as model load time."""
    return _unit(value, "s")


def integer(value: Any) -> str:
    """Counts that are integers (iterations, threads); NaN-safe."""
    v = _num(value)
    return MISSING if v is None else f"{v:,.0f}"


def yes_no(value: Any) -> str:
    """Tri-state booleans (throttled): yes / no / unknown."""
    if is_missing(value):
        return MISSING
    return "yes" if bool(value) else "no"


def interval(lo: Any, hi: Any, unit: Formatter = ms) -> str:
    """A confidence interval ``12.1–12.6 ms`` (one unit at the end), or MISSING."""
    a, b = _num(lo), _num(hi)
    if a is None or b is None:
        return MISSING
    text = unit(b)
    number, _, suffix = text.partition(" ")
    return f"{unit(a).partition(' ')[0]}–{number}{' ' + suffix if suffix else ''}"


def p50_detail(repeats: Any, ci_lo: Any, ci_hi: Any) -> str:
    """What a headline p50 is: `` (median of 5 repeats) [95% CI 12.1–12.6 ms]``.

    The part on repeats appears when the p50 is the median of two or more timed windows
    (each in a fresh process); the CI when both ends are known. Empty when neither is
    (older runs). HTML- and plotly-safe: numbers only.
    """
    n = _num(repeats)
    text = f" (median of {n:.0f} repeats)" if n is not None and n >= 2 else ""
    ci = interval(ci_lo, ci_hi)
    return text + (f" [95% CI {ci}]" if ci != MISSING else "")


def plain(value: Any) -> str:
    """Any other value, escaped as HTML."""
    return esc(value)
