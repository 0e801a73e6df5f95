"""The durable results store. ``harness.store.open(path).results()`` is the notebook API."""

from __future__ import annotations

from pathlib import Path

from harness.store.store import FINISHED, RESULT_COLUMNS, Store

DEFAULT_PATH = Path("results/harness.db")


def open(path: str | Path = DEFAULT_PATH, *, readonly: bool = False) -> Store:  # noqa: A001 - the notebook API
    """Open (creating or migrating) the store at ``path``; ``readonly``: read it as it is, writing
    nothing (an old store is refused with how to migrate it; so is a file that is not a store)."""
    return Store(Path(path), readonly=readonly)


__all__ = ["DEFAULT_PATH", "FINISHED", "RESULT_COLUMNS", "Store", "open"]
