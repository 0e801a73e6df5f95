"""Errors the agent reports as ``error`` events; ``kind`` is the class name.

The coordinator maps each kind, in one place (``harness.errors.AGENT_KINDS``), onto the
job's failure reason; ``ProtocolError`` means the coordinator and agent disagree about the spec.
"""

from __future__ import annotations

from typing import Any, Callable


class AgentError(Exception):
    """Base class: anything raised on purpose, turned into one ``error`` event."""

    @property
    def kind(self) -> str:
        return type(self).__name__


class ProtocolError(AgentError):
    """The spec is malformed, too new, or names an unknown runtime or option."""


class RuntimeUnavailable(AgentError):
    """The runtime (or a requested provider/device) is not installed on this board."""


class ArtifactIncompatible(AgentError):
    """The model or eval set cannot run here: bad file, wrong shapes, wrong dtypes."""


class MeasurementError(AgentError):
    """Inference failed or the job ran past its time limit."""


class BoardBusy(AgentError):
    """Another coordinator held the board's lease for longer than the job would wait."""


class PowerModeError(AgentError):
    """The job's power mode cannot be applied on this board (no cpufreq or tool, no root, a
    governor or frequency the board does not offer); the board is left as it was."""


def guard(step: Callable[[], Any], kind: type, what: str) -> Any:
    """Run ``step``; an unexpected exception becomes ``kind`` carrying the runtime's message
    (a runtime library raises its own types, which the coordinator cannot know)."""
    try:
        return step()
    except AgentError:
        raise
    except Exception as exc:
        raise kind("%s: %s: %s" % (what, type(exc).__name__, exc)) from None
