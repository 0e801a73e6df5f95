"""One exception hierarchy; every message is meant for the user and says what to do next.

The CLI turns any ``HarnessError`` into one red line and an exit code (``exit_code``);
anything else is a bug and gets a short notice with the traceback in a debug log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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
                                  agent_errors.BoardBusy, agent_errors.PowerModeError)
}  # fmt: skip


def agent_failure(kind: str, message: str) -> str:
    """A job's one-line failure reason from the agent's ``error`` event."""
    return f"{kind}: {message}" if kind in AGENT_KINDS else f"AgentError (unknown kind {kind!r}): {message}"


class VariantBuildError(HarnessError):
    """A compression recipe failed for one model; the variant is stored as failed.

    ``str(exc)`` and ``reason`` are one line of at most ``MAX_REASON`` characters (``one_line``:
    long name lists summarized, long paths shortened, the rest cut with "..."), so that with
    the builder's ``VariantBuildError: `` prefix a stored failure stays within 300 characters;
    ``detail`` keeps the full text (the tool's own message) for whoever can store it, or None
    when the reason is already all of it. Both survive pickling (Ray hands failures back pickled).
    """

    MAX_REASON = 280

    def __init__(self, reason: str, detail: str | None = None):
        text = str(reason)
        self.reason = one_line(text, self.MAX_REASON)
        self.detail = detail if detail is not None else (text if text != self.reason else None)
        super().__init__(self.reason)

    def __reduce__(self):  # noqa: ANN204 - pickle: keep ``detail``, not only ``args``
        return (type(self), (self.reason, self.detail))


# A Python list repr of more than _MAX_LISTED quoted names, as tools print them ("['a', 'b', ...]").
_NAME_LIST = re.compile(r"\[(?:'[^'\n]*'(?:, )?){%d,}\]" % 9)
_LONG_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s/:'\"()\[\],]+){4,}")
_MAX_LISTED = 8


def name_list(names: Sequence[str], what: str = "inputs", shown: int = 3) -> str:
    """``"2 inputs: a, b"``, or past ``_MAX_LISTED`` names ``"213 inputs: a, b, c, ..."``."""
    names = [str(n) for n in names]
    if len(names) <= _MAX_LISTED:
        return f"{len(names)} {what}: {', '.join(names)}" if names else f"no {what}"
    return f"{len(names)} {what}: {', '.join(names[:shown])}, ..."


def one_line(text: str, limit: int = 300) -> str:
    """``text`` as one line of at most ``limit`` characters: lines joined with " | ", runs of
    whitespace collapsed, Python lists of many names summarized (``name_list``), long absolute
    paths shortened to their last two parts, and what still overflows cut with "..."."""

    def names(m: re.Match[str]) -> str:
        return name_list(re.findall(r"'([^'\n]*)'", m.group(0)), "names")

    def path(m: re.Match[str]) -> str:
        p = m.group(0)
        return p if len(p) <= 48 else ".../" + "/".join(p.rsplit("/", 2)[-2:])

    text = _LONG_PATH.sub(path, _NAME_LIST.sub(names, str(text)))
    out = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    out = re.sub(r"\s+", " ", out).strip()
    return out if len(out) <= limit else out[: limit - 3].rstrip() + "..."


class GateError(HarnessError):
    """The gate cannot pass this candidate (it did not finish): a failed gate, not bad input."""

    exit_code = 1


class StoreError(HarnessError):
    """The results store cannot be opened or written."""


class SchemaVersionError(StoreError):
    pass


class RunBusyError(StoreError):
    """A resume asked for a run that another live coordinator is writing (``harness.store.writer``)."""


class StoreWriteError(StoreError):
    """SQLite failed under a running sweep (disk full, locked past the busy timeout, I/O error):
    what was committed before stays, and the run is left resumable. Not bad input, not a bug."""

    exit_code = 4


class Interrupted(HarnessError):
    """The user stopped a sweep (Ctrl-C); the message says what was kept and how to resume."""

    exit_code = 130


def as_harness_error(exc: Exception) -> HarnessError | None:
    """An error of a layer below the harness that the user caused, as the harness reports it
    (the reports package raises its own ``ReportError``: it imports nothing from here)."""
    from reports.errors import ReportError

    if isinstance(exc, ReportError):
        return ConfigError(exc.reason, field=exc.field)
    return None
