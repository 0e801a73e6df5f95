"""What one line on ``serve``'s stdin asks for (the protocol is described in serve.py).

Kept apart from the server's state machine: parsing is pure, and a malformed request
becomes a job that is answered with a ``ProtocolError``, in its turn, never a crash.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple

LEASE_KEYS = {"owner": str, "host": str, "pid": int, "ttl_s": (int, float), "wait_s": (int, float)}


class JobRequest:
    """One job request and where it stands: queued, ``waiting`` for the lease, ``running``."""

    def __init__(self, spec: str, lease_terms: Optional[Dict[str, Any]] = None, problem: str = ""):
        self.spec = spec
        self.terms = lease_terms  # the request's lease block; None: a bare path, no lease
        self.problem = problem  # a malformed request: answered with an error, never run
        self.phase = "queued"
        self.since = 0.0  # monotonic: when the wait began, or the last renewal while running
        self.next_try = 0.0
        self.holder: Optional[Tuple[Any, ...]] = None  # the holder the last "waiting" event named
        self.token: Optional[str] = None
        self.pid = 0
        self.killed = ""  # why the server killed the child


def parse_request(text: str) -> Optional[JobRequest]:
    """The job a stdin line asks for; None for a heartbeat (``{"cmd": "renew"}``)."""
    if not text.startswith("{"):
        return JobRequest(text)
    try:
        req = json.loads(text)
    except ValueError as exc:
        return JobRequest("", problem="request is not JSON: %s" % exc)
    cmd = req.get("cmd") if isinstance(req, dict) else None
    if cmd == "renew":
        return None
    if cmd != "job":
        return JobRequest("", problem="unknown request %r (this agent knows job and renew)" % (cmd,))
    spec, terms = req.get("spec"), req.get("lease")
    if not isinstance(spec, str) or not spec:
        return JobRequest("", problem="job request without a spec path")
    problem = "" if terms is None else _lease_problem(terms)
    return JobRequest(spec, None if problem else terms, problem)


def _lease_problem(terms: Any) -> str:
    if not isinstance(terms, dict):
        return "the job request's lease is not an object"
    bad = [k for k, kind in LEASE_KEYS.items() if not isinstance(terms.get(k), kind)]
    if "dir" in terms and not (isinstance(terms["dir"], str) and terms["dir"]):
        bad.append("dir")  # optional: the board's own place (lease.board_dir) when absent
    if bad:
        return "the job request's lease lacks or mistypes: %s" % ", ".join(bad)
    if terms["ttl_s"] <= 0 or terms["wait_s"] < 0:
        return "the job request's lease needs ttl_s > 0 and wait_s >= 0"
    return ""
