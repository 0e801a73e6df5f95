"""pareto_front against the O(n^2) definition, on random data with ties and NaNs."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from reports.pareto import pareto_front, pareto_front_arrays


def brute_force(df: pd.DataFrame, x: str, y: str, minimize_x: bool, maximize_y: bool) -> list[bool]:
    """The definition, written as plainly as possible (see reports/pareto.py)."""
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    a = xs if minimize_x else -xs
    b = -ys if maximize_y else ys
    valid = np.isfinite(a) & np.isfinite(b)
    out = []
    for i in range(len(df)):
        if not valid[i]:
            out.append(False)
            continue
        dominated = any(
            valid[j] and a[j] <= a[i] and b[j] <= b[i] and (a[j] < a[i] or b[j] < b[i])
            for j in range(len(df))
        )
        out.append(not dominated)
    return out


def random_frame(
    rng: np.random.Generator, n: int, levels: int | None, nan_frac: float
) -> pd.DataFrame:
    if levels is None:  # continuous: ties are rare
        x, y = rng.normal(size=n), rng.normal(size=n)
    else:  # few distinct values: many ties in x, in y and exact duplicates
        x = rng.integers(0, levels, size=n).astype(float)
        y = rng.integers(0, levels, size=n).astype(float)
    x[rng.random(n) < nan_frac] = np.nan
    y[rng.random(n) < nan_frac] = np.nan
    # A shuffled, non-default index: the result must align by label, not position.
    return pd.DataFrame({"lat": x, "acc": y}, index=rng.permutation(n) * 3 + 7)


@pytest.mark.parametrize("minimize_x", [True, False])
@pytest.mark.parametrize("maximize_y", [True, False])
@pytest.mark.parametrize("levels", [None, 3, 8])
@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(
    seed: int, levels: int | None, minimize_x: bool, maximize_y: bool
) -> None:
    rng = np.random.default_rng(seed)
    df = random_frame(rng, int(rng.integers(1, 120)), levels, nan_frac=0.1)
    before = df.copy()
    got = pareto_front(df, "lat", "acc", minimize_x=minimize_x, maximize_y=maximize_y)
    assert got.dtype == bool and got.name == "pareto"
    assert got.index.equals(df.index)
    assert got.tolist() == brute_force(df, "lat", "acc", minimize_x, maximize_y)
    pd.testing.assert_frame_equal(df, before)  # pure


def test_ties_are_deterministic() -> None:
    df = pd.DataFrame(
        {
            "lat": [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 0.5],
            "acc": [0.9, 0.9, 0.8, 0.95, 0.9, 0.95, np.nan],
        }
    )
    # Duplicates (rows 0, 1) are both on the front; row 2 loses to them on accuracy;
    # row 4 is dominated; row 5 ties row 3 on accuracy but is slower; NaN never counts.
    assert pareto_front(df, "lat", "acc").tolist() == [True, True, False, True, False, False, False]
    # Row order must not matter.
    shuffled = df.sample(frac=1.0, random_state=1)
    assert (
        pareto_front(shuffled, "lat", "acc").sort_index().tolist()
        == pareto_front(df, "lat", "acc").tolist()
    )


def test_nan_none_and_inf_never_on_front() -> None:
    df = pd.DataFrame(
        {"lat": [None, 1.0, np.inf, 2.0, -np.inf], "acc": [0.99, None, 0.99, 0.5, 0.1]},
        dtype=object,
    )
    assert pareto_front(df, "lat", "acc").tolist() == [False, False, False, True, False]


def test_empty_and_all_missing() -> None:
    empty = pd.DataFrame({"lat": [], "acc": []})
    assert pareto_front(empty, "lat", "acc").tolist() == []
    missing = pd.DataFrame({"lat": [np.nan, 1.0], "acc": [1.0, np.nan]})
    assert not pareto_front(missing, "lat", "acc").any()


def test_size_axis_minimised() -> None:
    df = pd.DataFrame({"lat": [1.0, 2.0, 3.0], "size": [30.0, 10.0, 20.0]})
    assert pareto_front(df, "lat", "size", maximize_y=False).tolist() == [True, True, False]


def test_arrays_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        pareto_front_arrays(np.zeros(3), np.zeros(4))


def test_vectorised_scales() -> None:
    # 200k rows: an O(n^2) Python loop would take hours; the sort-based one well under 1 s.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"lat": rng.random(200_000), "acc": rng.random(200_000)})
    start = time.perf_counter()
    front = pareto_front(df, "lat", "acc")
    assert time.perf_counter() - start < 5.0
    assert 0 < front.sum() < 200
