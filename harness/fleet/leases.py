"""A board's lease seen from the coordinator's desk: who holds it (``harness inventory
check``), and freeing it by hand (``harness lease break``) when its holder is known gone.

Both run ``agent lease show|break`` on the board over its transport: the lease lives in
the board's one place (devices/agent/lease.py ``board_dir``), whatever work directory the
inventory gives the board.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devices.agent.lease import holder_text
from harness.transport import Transport
from harness.config import Device
from harness.coordinator.protocol import parse_events
from harness.coordinator.runner import agent_python
from harness.transport import open_transport
from harness.errors import AgentError


def lease_event(t: Transport, python: str, agent: str, action: str, timeout_s: float) -> dict[str, Any]:
    """The agent's ``lease`` event (state and holder) for the board ``t`` is connected to."""
    res = t.run([python, agent, "lease", action], timeout_s)
    events = parse_events(res.stdout)
    event = next((e for e in events if e.get("event") == "lease"), None)
    if event is None:
        error = next((e for e in events if e.get("event") == "error"), None)
        why = error.get("message") if error else (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
        raise AgentError(f"agent lease {action}: {why}")
    return event


def break_lease(device: Device, agent_pyz: Path, driver_env: dict[str, str], timeout_s: float) -> dict[str, Any]:
    """Free the device's board whoever holds it; the ``lease`` event says whom it freed."""
    t = open_transport(device, driver_env)
    try:
        t.connect()
        return lease_event(t, agent_python(device), t.put_by_hash(agent_pyz), "break", timeout_s)
    finally:
        t.close()


def lease_text(event: dict[str, Any] | None) -> str:
    """``free``, or ``OWNER@HOST pid P since ...`` (``, stale: why`` when the next job may take it)."""
    if not event:
        return "-"
    holder = event.get("holder")
    if not holder:
        return "free"
    return holder_text(holder) + (f", stale: {event.get('reason')}" if event.get("state") == "stale" else "")
