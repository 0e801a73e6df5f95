"""The durable results store. ``harness.store.open(path).results()`` is the notebook API."""

from __future__ import annotations

from pathlib import Path

from harness.store.store import RESULT_COLUMNS, Store

DEFAULT_PATH = Path("results/harness.db")


def open(path: str | Path = DEFAULT_PATH) -> Store:  # noqa: A001 - the documented notebook API
    """Open (creating or migrating) the store at ``path``."""
    return Store(Path(path))


__all__ = ["DEFAULT_PATH", "RESULT_COLUMNS", "Store", "open"]
