"""The coordinator's side of a board's lease (the board's agent holds it: devices/agent/lease.py).

Every job asks the board's agent server for the lease in its job line; while the job waits
for the board or runs on it, the runner heartbeats every ttl_s / 4 so the lease stays
renewed (and the board kills the job if the heartbeats stop: nobody measures on a lease
that may expire). ``LeaseWatch`` reads the job's answer line by line: it logs takeovers,
and tells the driver's progress line when the board is held by another coordinator.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.agent.errors import BoardBusy
from devices.agent.lease import utc_text
from harness.config.suite import LeaseSettings
from harness.coordinator.protocol import load_line

log = logging.getLogger("edge_harness.coordinator")

RENEW_LINE = json.dumps({"cmd": "renew"})


@dataclass(frozen=True)
class LeaseTerms:
    """How long a job's lease lasts unrenewed and how long a job waits for a held board, and
    who asks: the run, the coordinator's host and pid (the driver's, built there: the process
    a person would look for, not the Ray actor's)."""

    owner: str = "harness"  # a sweep's run id
    ttl_s: float = LeaseSettings().ttl_s
    wait_s: float = LeaseSettings().wait_s
    host: str = field(default_factory=platform.node)
    pid: int = field(default_factory=os.getpid)

    @classmethod
    def of(cls, settings: LeaseSettings, owner: str) -> LeaseTerms:
        return cls(owner=owner, ttl_s=settings.ttl_s, wait_s=settings.wait_s)

    def job_line(self, spec_path: str, job_id: str) -> str:
        """The serve request for one job. It names no lease directory: the board's agent keeps
        its lease in the board's one place (devices/agent/lease.py ``board_dir``), whatever
        work directory an inventory gave the board, so two inventories still exclude each other."""
        terms = {"owner": self.owner, "host": self.host, "pid": self.pid,
                 "ttl_s": self.ttl_s, "wait_s": self.wait_s, "job_id": job_id}
        return json.dumps({"cmd": "job", "spec": spec_path, "lease": terms})

    def heartbeat(self, send_line: Callable[[str], None]) -> tuple[float, Callable[[], None]]:
        """``Session.read_until``'s heartbeat: a renew line every ttl_s / 4."""
        return self.ttl_s / 4, lambda: send_line(RENEW_LINE)


class LeaseWatch:
    """Sees every line of one job's answer: lease events become log lines and board notes.

    ``notify(board, note)`` carries a note to the driver's progress line ("waiting, held by
    ..."), and None when the note no longer holds (the job got the board, or ended).
    """

    def __init__(self, board: str, notify: Callable[[str, str | None], None]):
        self.board = board
        self.notify = notify
        self.noted = False
        self.wait_began: float | None = None
        self.waited_s: float | None = None  # how long the job waited for a held board, if it did
        self.took_over: str | None = None  # whose stale lease the job took over (and why it was stale), if it did

    def restart(self, line: str, wait_s: float, run_s: float) -> float | None:
        """The read's new timeout at ``line``: ``run_s`` once the job has the board, ``wait_s``
        when the board first says it is held by another coordinator, else None."""
        was_waiting = self.wait_began is not None
        if self.granted(line):
            return run_s
        return wait_s if self.wait_began is not None and not was_waiting else None

    def granted(self, line: str) -> bool:
        """True for the line that says the job got the board (and now runs); logs and notes
        every lease event on the way."""
        event = _lease_event(line)
        if event is None:
            return False
        state = event.get("state")
        if state == "waiting":
            holder = _object(event.get("holder"))
            who = f"{holder.get('owner')}@{holder.get('host')}"
            log.info("%s is held by %s pid %s since %s: waiting", self.board, who, holder.get("pid"),
                     _since(holder.get("started")))
            self._note(f"waiting, held by {who} since {_since(holder.get('started'))}")
            if self.wait_began is None:
                self.wait_began = time.monotonic()
            return False
        if state == "taken_over":
            p = _object(event.get("previous"))
            self.took_over = f"{p.get('owner')}@{p.get('host')} pid {p.get('pid')} ({event.get('reason')})"
            log.warning("lease of %s taken over from %s", self.board, self.took_over)
        if self.wait_began is not None:
            self.waited_s = round(time.monotonic() - self.wait_began, 3)
            log.info("%s is free after %.1f s: measuring", self.board, self.waited_s)
        self.clear()
        return state in ("granted", "taken_over")

    def clear(self) -> None:
        if self.noted:
            self.notify(self.board, None)
            self.noted = False

    def _note(self, text: str) -> None:
        self.notify(self.board, text)
        self.noted = True


def board_busy(events: list[dict[str, Any]]) -> str | None:
    """The agent's "board busy: held by ..." message when the job gave up waiting, else None."""
    return next((str(e.get("message")) for e in events if e.get("event") == "error" and e.get("kind") == BoardBusy.__name__),
                None)


def _lease_event(line: str) -> dict[str, Any] | None:
    if '"lease"' not in line:
        return None
    event = load_line(line)
    return event if event is not None and event.get("event") == "lease" else None


def _since(stamp: Any) -> str:
    """When a holder took the board (the board's clock), or "?" when the board sent no usable time."""
    try:
        return utc_text(float(stamp))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def _object(value: Any) -> dict[str, Any]:
    """A lease event's nested object; anything else a board sends reads as empty."""
    return value if isinstance(value, dict) else {}
