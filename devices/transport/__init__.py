"""Transports: how the coordinator reaches a device. One class per file, one table."""

from __future__ import annotations

from devices.transport.base import CommandResult, Transport, sha256_file
from devices.transport.local import LocalTransport
from devices.transport.ssh import SSHTransport

# Keyed by transport name; every device kind except "local" goes over SSH.
TRANSPORTS: dict[str, type[Transport]] = {"local": LocalTransport, "ssh": SSHTransport}

__all__ = ["TRANSPORTS", "CommandResult", "LocalTransport", "SSHTransport", "Transport", "sha256_file"]
