"""Fixtures for the report tests; the data itself lives in ``report_data``."""

from __future__ import annotations

import pandas as pd
import pytest
from report_data import FACTS, RUN_INFO, synthetic_results

from reports.sections.base import ReportContext


@pytest.fixture
def results() -> pd.DataFrame:
    return synthetic_results()


@pytest.fixture
def ctx(results: pd.DataFrame) -> ReportContext:
    return ReportContext(results, RUN_INFO, FACTS)
