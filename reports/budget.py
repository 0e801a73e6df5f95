"""The budget a recommendation must fit: p50 latency, energy per inference, p99 latency and a
throughput floor (each optional).

Why both sources, merged per field: the suite's ``report: {latency_budget_ms, energy_budget_mj}``
states the product's standing requirement, so every report of that suite recommends
against it without extra flags; ``harness report --budget-ms/--budget-mj`` answers "what
if" questions and wins over the suite for the field it sets. Each field remembers where it
came from, and the page says so, so a reader never wonders which number was applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reports.errors import ReportError

__all__ = ["Budget", "resolve_budget"]

CLI = "command line"
SUITE = "suite"


@dataclass(frozen=True)
class Budget:
    """Upper limits for a recommended variant; None means "no limit on this quantity".

    Attributes:
        latency_ms: largest acceptable p50 latency.
        energy_mj: largest acceptable energy per inference.
        latency_source: where ``latency_ms`` came from ("command line" or "suite").
        energy_source: where ``energy_mj`` came from.
        p99_ms: largest acceptable p99 latency (the suite's ``p99_budget_ms``).
        min_throughput: smallest acceptable throughput, inferences/s (the suite's
            ``min_throughput``): "sustains 30 FPS". A paced result must also have kept up.
    """

    latency_ms: float | None = None
    energy_mj: float | None = None
    latency_source: str = ""
    energy_source: str = ""
    p99_ms: float | None = None
    min_throughput: float | None = None

    def __post_init__(self) -> None:
        for name, flag in (("latency_ms", "--budget-ms"), ("energy_mj", "--budget-mj"),
                           ("p99_ms", "report.p99_budget_ms"), ("min_throughput", "report.min_throughput")):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ReportError(f"a budget must be a positive number, got {value!r}", field=flag)

    @property
    def empty(self) -> bool:
        """True when no limit is set: there is nothing to recommend against."""
        return all(v is None for v in (self.latency_ms, self.energy_mj, self.p99_ms, self.min_throughput))


def _suite_value(settings: Mapping[str, Any], key: str) -> float | None:
    """A positive number from the stored suite, else None (old or hand-made run infos)."""
    value = settings.get(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def resolve_budget(
    run_info: Mapping[str, Any], latency_ms: float | None = None, energy_mj: float | None = None
) -> Budget:
    """The budget for a run: command-line values, else the run's suite ``report:`` settings.

    Args:
        run_info: the run's info as the store returns it (the suite sits in ``config.suite``).
        latency_ms: ``--budget-ms``, or None.
        energy_mj: ``--budget-mj``, or None.
    """
    config = run_info.get("config") or {}
    suite = config.get("suite") if isinstance(config, Mapping) else None
    settings = (suite or {}).get("report") if isinstance(suite, Mapping) else None
    settings = settings if isinstance(settings, Mapping) else {}
    suite_ms, suite_mj = _suite_value(settings, "latency_budget_ms"), _suite_value(settings, "energy_budget_mj")
    return Budget(
        latency_ms=latency_ms if latency_ms is not None else suite_ms,
        energy_mj=energy_mj if energy_mj is not None else suite_mj,
        latency_source=CLI if latency_ms is not None else SUITE if suite_ms is not None else "",
        energy_source=CLI if energy_mj is not None else SUITE if suite_mj is not None else "",
        p99_ms=_suite_value(settings, "p99_budget_ms"), min_throughput=_suite_value(settings, "min_throughput"),
    )
