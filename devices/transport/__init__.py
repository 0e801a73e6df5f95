"""Transports: how the coordinator reaches a device. One class per file, one table."""

from __future__ import annotations

from devices.transport.base import CommandResult, Transport, sha256_file
from devices.transport.local import LocalTransport

# Keyed by device kind; the SSH transport joins for every non-local kind in the fleet issue.
TRANSPORTS: dict[str, type[Transport]] = {"local": LocalTransport}

__all__ = ["TRANSPORTS", "CommandResult", "LocalTransport", "Transport", "sha256_file"]
