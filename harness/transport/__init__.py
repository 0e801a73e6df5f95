"""Transports: how the coordinator reaches a device. One class per file, one table."""

from __future__ import annotations

from harness.config import Device
from harness.transport.base import CommandResult, Transport, sha256_file
from harness.transport.local import LocalTransport
from harness.transport.ssh import SSHTransport

# Keyed by transport name; every device kind except "local" goes over SSH.
TRANSPORTS: dict[str, type[Transport]] = {"local": LocalTransport, "ssh": SSHTransport}


def open_transport(device: Device, driver_env: dict[str, str]) -> Transport:
    """The transport of an inventory device: its own machine for kind local, SSH for every
    other kind. Builds the object only (no network)."""
    return TRANSPORTS["local" if device.kind == "local" else "ssh"].for_device(device, driver_env)


__all__ = ["TRANSPORTS", "CommandResult", "LocalTransport", "SSHTransport", "Transport", "open_transport",
           "sha256_file"]
