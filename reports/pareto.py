"""Pareto front of a results table, vectorised.

Why a hand-written front: the report draws one per (device, model) and the dashboard will
draw one per run in a history, so it must be O(n log n) (sort + cumulative minimum) rather
than the pairwise O(n^2) check, and it must agree exactly with that check, ties included,
because the gate will later ask "did this variant leave the front?".

Definition used everywhere (and by the brute-force test): with both axes turned into
"smaller is better", point *j* dominates point *i* when ``x_j <= x_i`` and ``y_j <= y_i``
and at least one inequality is strict. A point is on the front when no other point
dominates it. Consequences, all deterministic and independent of row order:

- exact duplicates do not dominate each other, so all copies of a front point are on it;
- among points with the same x, only those with the best y can be on the front;
- rows whose x or y is NaN, None or +/-inf are never on the front and never dominate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pareto_front", "pareto_front_arrays"]


def pareto_front_arrays(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Front mask for two float arrays where smaller is better on both axes.

    Sort by ``a`` then ``b``; within a group of equal ``a`` the first ``b`` is the group's
    best. A point survives when it equals its group's best ``b`` and that best is strictly
    better than the best ``b`` of every group with a smaller ``a`` (an exclusive
    cumulative minimum over the group minima).

    Args:
        a: first objective, minimised; non-finite values are excluded.
        b: second objective, minimised; non-finite values are excluded.

    Returns:
        Boolean array, same length as ``a``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    on = np.zeros(a.shape[0], dtype=bool)
    idx = np.flatnonzero(np.isfinite(a) & np.isfinite(b))
    if idx.size == 0:
        return on
    av, bv = a[idx], b[idx]
    order = np.lexsort((bv, av))  # primary key av, secondary bv: stable and deterministic
    sa, sb = av[order], bv[order]
    starts = np.empty(sa.size, dtype=bool)
    starts[0] = True
    np.not_equal(sa[1:], sa[:-1], out=starts[1:])
    group = np.cumsum(starts) - 1
    group_best = sb[starts]
    # Best b among all groups with strictly smaller a; +inf before the first group.
    best_before = np.empty_like(group_best)
    best_before[0] = np.inf
    np.minimum.accumulate(group_best[:-1], out=best_before[1:])
    keep = (sb == group_best[group]) & (sb < best_before[group])
    on[idx[order[keep]]] = True
    return on


def pareto_front(
    df: pd.DataFrame,
    x: str,
    y: str,
    minimize_x: bool = True,
    maximize_y: bool = True,
) -> pd.Series:
    """Which rows of ``df`` are on the Pareto front of columns ``x`` and ``y``.

    Pure: ``df`` is not modified. Columns are coerced with ``pd.to_numeric`` so object
    columns holding ``None`` (as the store returns them) work.

    Args:
        df: the rows to compare; any index.
        x: column name of the first objective (latency, usually).
        y: column name of the second objective (accuracy, or size).
        minimize_x: smaller x is better (True for latency).
        maximize_y: larger y is better (True for accuracy, False for size).

    Returns:
        Boolean Series named ``"pareto"`` aligned with ``df.index``.
    """
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    a = xs if minimize_x else -xs
    b = -ys if maximize_y else ys
    return pd.Series(pareto_front_arrays(a, b), index=df.index, name="pareto", dtype=bool)
