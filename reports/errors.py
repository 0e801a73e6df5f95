"""The reports' one error: bad input to a report (it imports nothing from the harness; the
harness reports it as its own ``ConfigError``, ``harness.errors.as_harness_error``)."""

from __future__ import annotations


class ReportError(ValueError):
    """Data without the expected shape, or a bad budget (``field`` names the option)."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field
