"""Fixtures for the report tests; the data itself lives in ``report_data``."""

from __future__ import annotations

import sys
from pathlib import Path

# The project is not pip-installed in every checkout and pyproject.toml sets no
# ``pythonpath``; make the repository root importable so ``import reports`` works under a
# bare ``pytest``. Harmless once the project is installed (editable or not).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from report_data import FACTS, RUN_INFO, synthetic_results  # noqa: E402

from reports.sections.base import ReportContext  # noqa: E402


@pytest.fixture
def results() -> pd.DataFrame:
    return synthetic_results()


@pytest.fixture
def ctx(results: pd.DataFrame) -> ReportContext:
    return ReportContext(results, RUN_INFO, FACTS)
