"""The board canary: a fixed model measured first and last on every board of a sweep.

Why it is kept apart from everything else: the canary is not a candidate, it is a probe of
the board. Its numbers say whether the board itself changed (clocks, heat, another tenant)
during the sweep and between nights, so it is left out of the Pareto fronts, the
recommendations and the run-to-run comparison of models, and shown on its own: per board
its first and last p50 of the run and their ratio (the within-run drift), and across a
tag's runs one line per board.

The store keeps the canary as ordinary jobs with ``model == "canary"`` (the planner
reserves the name), variant ``fp32``, device the board's name, the board's first runtime,
two per board and run; "first" and "last" are told apart by the job's ``started`` time
(earliest and latest; a job that never started sorts last, then the store's order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from devices.agent.canary import CANARY_NAME

__all__ = ["CANARY_NAME", "DRIFT_WARN", "canary_pairs", "is_canary", "without_canary"]

#: A within-run drift (last/first - 1) beyond this fraction either way is highlighted.
DRIFT_WARN = 0.05
#: Columns carried per end (first/last) when the frame has them.
_PER_END = ("p50_ms", "p99_ms", "cv", "started", "status", "noisy", "unstable", "throttled")


def is_canary(df: pd.DataFrame) -> pd.Series:
    """True on the canary's rows."""
    return df["model"].astype(str) == CANARY_NAME


def without_canary(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that measured a model under test (every row but the canary's)."""
    return df[~is_canary(df)]


def canary_pairs(results: pd.DataFrame, by: tuple[str, ...] = ("device",)) -> pd.DataFrame:
    """Per ``by`` group (a board, or a (run, board)): the canary's first and last job.

    Args:
        results: result rows (any, canary or not); ``model``, ``runtime``, ``p50_ms`` and
            the ``by`` columns are needed, ``started`` and the rest of ``_PER_END`` are used
            when present.
        by: the grouping; ``("run", "device")`` for a history.

    Returns:
        One row per group, sorted by it: the ``by`` columns, ``runtime`` (the first job's),
        ``n`` (canary jobs in the group), ``first_<col>`` and ``last_<col>`` for each of
        ``_PER_END`` present (the last ones NaN/None when the group has one job), and
        ``drift``: last p50 / first p50 (NaN when either is missing).
    """
    keys = list(by)
    rows = results[is_canary(results)]
    columns = [c for c in _PER_END if c in rows.columns]
    if rows.empty:
        return pd.DataFrame(columns=[*keys, "runtime", "n", *(f"{e}_{c}" for e in ("first", "last") for c in columns),
                                     "drift"])  # fmt: skip
    started = pd.to_numeric(rows["started"], errors="coerce") if "started" in rows.columns else np.nan
    ordered = rows.assign(_t=started, _pos=np.arange(len(rows)))
    ordered = ordered.sort_values([*keys, "_t", "_pos"], kind="stable", na_position="last")
    groups = ordered.groupby(keys, sort=True)
    first, last = groups.head(1).set_index(keys), groups.tail(1).set_index(keys)
    n = groups.size()
    out = pd.DataFrame({"runtime": first["runtime"].reindex(n.index), "n": n})
    single = (n < 2).to_numpy()
    for col in columns:
        out[f"first_{col}"] = first[col].reindex(n.index)
        tail = last[col].reindex(n.index)
        out[f"last_{col}"] = tail.astype(object).where(~single, None) if tail.dtype == object else tail.where(~single)
    p50_first = pd.to_numeric(out["first_p50_ms"], errors="coerce")
    p50_last = pd.to_numeric(out["last_p50_ms"], errors="coerce")
    out["drift"] = (p50_last / p50_first).where((p50_first > 0) & np.isfinite(p50_last))
    return out.reset_index()
