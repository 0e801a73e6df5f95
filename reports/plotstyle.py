"""The page's one plotly look, written out small.

Why not ``template="plotly_white"``: a named template is serialised into every figure's
JSON (6.5 kB each; a history dashboard has dozens of figures), while the handful of
settings we actually want costs a few hundred bytes. ``template="none"`` keeps plotly.py
from embedding its default template instead.
"""

from __future__ import annotations

from typing import Any

from reports import fmt

__all__ = ["GRID", "axis_style", "base_layout"]

GRID = "#e5e9f0"
_FONT = {"family": 'system-ui,-apple-system,"Segoe UI",sans-serif', "size": 12, "color": "#222"}


def axis_style(**extra: Any) -> dict[str, Any]:
    """One axis: light grid, no zero line (latency and energy never reach 0 on screen)."""
    return {"gridcolor": GRID, "zeroline": False, "linecolor": "#b8c0cc", "showline": True,
            "automargin": True, **extra}  # fmt: skip


def base_layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    """Layout of every figure; ``title`` is raw and escaped here.

    Args:
        title: figure title (user names inside are escaped with ``fmt.plot_text``).
        height: pixels; width follows the container (the figures are responsive).
        **extra: more layout keys (axes, legend), merged last.
    """
    return {
        "template": "none",
        "title": {"text": fmt.plot_text(title), "x": 0.01, "font": {"size": 14}},
        "font": _FONT,
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "height": height,
        "hoverlabel": {"align": "left"},
        **extra,
    }
