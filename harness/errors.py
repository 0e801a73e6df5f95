"""One exception hierarchy; every message is meant for the user and says what to do next.

The CLI turns any ``HarnessError`` into one red line and an exit code (``exit_code``);
anything else is a bug and gets a short notice with the traceback in a debug log.
"""

from __future__ import annotations

from devices.agent import errors as agent_errors


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code = 2


class ConfigError(HarnessError, ValueError):
    """Bad input: a config file, a CLI argument, a model reference.

    ``location`` is ``file:line`` (or just the file) and ``field`` the dotted path of the
    offending key, so the message points the user at the exact spot.
    """

    def __init__(self, message: str, *, location: str | None = None, field: str | None = None):
        self.location = location
        self.field = field
        self.reason = message
        parts = [p for p in (location, field) if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)


class InventoryError(ConfigError):
    """The inventory file is wrong (unknown kind, duplicate device, ...)."""


class TransportError(HarnessError):
    """A device could not be reached or a command on it failed."""


class ConnectError(TransportError):
    pass


class AuthError(TransportError):
    pass


class CommandTimeout(TransportError):
    pass


class RemoteCommandError(TransportError):
    pass


class AgentError(HarnessError):
    """The device agent could not do the job, or broke the protocol; the job fails with it."""


# The agent's own error kinds (``devices/agent/errors.py``: the ``kind`` of its ``error``
# events), mapped here, once, onto the job's failure reason.
AGENT_KINDS: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (agent_errors.ProtocolError, agent_errors.RuntimeUnavailable,
                                  agent_errors.ArtifactIncompatible, agent_errors.MeasurementError,
                                  agent_errors.BoardBusy)
}  # fmt: skip


def agent_failure(kind: str, message: str) -> str:
    """A job's one-line failure reason from the agent's ``error`` event."""
    return f"{kind}: {message}" if kind in AGENT_KINDS else f"AgentError (unknown kind {kind!r}): {message}"


class VariantBuildError(HarnessError):
    """A compression recipe failed for one model; the variant is stored as failed."""


class StoreError(HarnessError):
    """The results store cannot be opened or written."""


class SchemaVersionError(StoreError):
    pass


def as_harness_error(exc: Exception) -> HarnessError | None:
    """An error of a layer below the harness that the user caused, as the harness reports it
    (the reports package raises its own ``ReportError``: it imports nothing from here)."""
    from reports.errors import ReportError

    if isinstance(exc, ReportError):
        return ConfigError(exc.reason, field=exc.field)
    return None
