"""Command line: ``measure [--workdir DIR] SPEC.json``, ``serve [--workdir DIR]`` (forks one
``measure`` per job request read on stdin; see serve.py), ``probe [--runtimes a,b]`` and
``lease show|break [--dir DIR]`` (the board's lease, see lease.py: who holds it, or free it by hand).

A job with a ``power_mode`` is measured in that mode (``power/``): applied before the job,
restored after it, its restore file in the work directory (``--workdir``, else the lease's
directory); every ``measure`` first undoes a mode a dead job left applied.

stdout carries only JSON lines (one event each, flushed); logs go to stderr. Exit codes:
0 a result was emitted (or probe ran), 1 an error event was emitted, 2 usage error.

To keep stdout clean even when a native library prints (C++ ``std::cout`` in a runtime),
a real run moves the JSON stream to a private duplicate of fd 1 and points fd 1 at stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import traceback
from typing import IO, Any, Dict, List, Optional

from . import lease, power
from .errors import AgentError, MeasurementError, PowerModeError, ProtocolError, RuntimeUnavailable
from .facts import default_probe_names, host_facts, measure_facts, probe_facts
from .measure import Deadline, run_job
from .memory import current_rss_mb
from .runtimes import open_runtime
from .serve import serve
from .spec import parse_spec
from .specfields import read_spec_file

log = logging.getLogger("edge_harness.agent")
# A hung native call cannot see the cooperative deadline; the watchdog ends the process
# this long after the deadline, having reported the phase it was stuck in.
WATCHDOG_GRACE_S = 2.0


class Emitter:
    """Writes one JSON object per line and flushes, from any thread."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), allow_nan=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def claim_stdout() -> IO[str]:
    """A private stream on the real stdout; fd 1 (and ``sys.stdout``) then go to stderr."""
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(json_fd, "w", encoding="utf-8")


class _JobFilter(logging.Filter):
    job_id = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = self.job_id
        return True


_job_filter = _JobFilter()


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"))
    handler.addFilter(_job_filter)
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agent", description="Edge Harness device agent")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command")
    m = sub.add_parser("measure", help="measure one job described by a JSON spec")
    m.add_argument("spec", help="path of the spec JSON file")
    m.add_argument("--workdir", default=None, help="the board's work directory: where a power mode's restore file "
                   "lives (default: the lease's directory)")
    sv = sub.add_parser("serve", help="read job requests on stdin, measure each in a forked process")
    sv.add_argument("--workdir", default=None, help="the board's work directory: old job specs and dead partial "
                    "uploads there are removed (at start and after each job)")
    pr = sub.add_parser("probe", help="report host facts and runtime availability")
    pr.add_argument("--runtimes", default=None, help="comma-separated runtime names (default: all real ones)")
    le = sub.add_parser("lease", help="show the board's lease, or break it (free the board by hand)")
    le.add_argument("action", choices=["show", "break"])
    le.add_argument("--dir", default=None, help="the directory that holds the lease (default: the board's own place, "
                    "$EDGE_HARNESS_LEASE_DIR or /tmp/edge-harness-<uid>)")
    return p


def _error(emit: Emitter, job_id: Optional[str], exc: AgentError) -> int:
    log.error("%s: %s", exc.kind, exc)
    emit({"event": "error", "job_id": job_id, "kind": exc.kind, "message": str(exc)})
    return 1


def _start_watchdog(emit: Emitter, job_id: str, deadline: Deadline, phase: List[str]) -> threading.Timer:
    def fire() -> None:
        msg = "timed out after %g s in phase %s (stuck in a runtime call)" % (deadline.timeout_s, phase[0])
        _error(emit, job_id, MeasurementError(msg))
        power.restore_active()  # the board's power mode, before the process ends without its finally
        os._exit(1)

    delay = (deadline.end_ns - time.perf_counter_ns()) / 1e9 + WATCHDOG_GRACE_S
    timer = threading.Timer(max(delay, 0.0), fire)
    timer.daemon = True
    timer.start()
    return timer


def power_board(workdir: Optional[str]) -> Optional[power.PowerBoard]:
    """The board as power modes see it, and a mode a dead job left applied undone; None when
    there is no work directory to keep a restore file in."""
    try:
        board = power.PowerBoard.from_env(workdir or lease.board_dir())
    except OSError as exc:
        log.debug("power modes: no work directory: %s", exc)
        return None
    said = power.recover(board)
    if said:
        log.warning("%s", said)
    return board


def measure(spec_path: str, emit: Emitter, watchdog: bool = False, workdir: Optional[str] = None) -> int:
    """The ``measure`` command; returns the exit code."""
    deadline_start = time.perf_counter_ns()
    rss_before = current_rss_mb()  # before any runtime library is imported
    job_id: Optional[str] = None
    _job_filter.job_id = "-"
    board = power_board(workdir)
    try:
        raw = read_spec_file(spec_path)
    except ProtocolError as exc:
        emit(dict(host_facts(), runtime=None))
        return _error(emit, None, exc)
    if isinstance(raw.get("job_id"), str):
        job_id = _job_filter.job_id = raw["job_id"]
    name = raw.get("runtime")
    facts = measure_facts(name) if isinstance(name, str) else dict(host_facts(), runtime=None)
    emit(facts)
    try:
        spec = parse_spec(raw)
        runtime = open_runtime(spec.runtime, spec.runtime_options, spec.measure.threads)
        info = facts["runtime"]
        if not info.get("available"):
            raise RuntimeUnavailable("runtime %s is not usable here: %s" % (spec.runtime, info.get("reason")))
        deadline = Deadline(spec.measure.timeout_s, deadline_start)
        phase = ["start"]
        timer = _start_watchdog(emit, spec.job_id, deadline, phase) if watchdog else None

        def on_phase(step: str) -> None:
            phase[0] = step
            log.info("phase %s", step)
            emit({"event": "progress", "job_id": spec.job_id, "phase": step})

        session = None  # type: Optional[power.PowerSession]
        try:
            c = spec.canary
            canary = open_runtime(c.runtime, c.runtime_options, spec.measure.threads, canary=True) if c else None
            if spec.power_mode is not None:
                on_phase("power_mode")
                if board is None:
                    raise PowerModeError("power modes need a work directory for the restore file")
                session = power.PowerSession(spec.power_mode, board, spec.job_id)
                session.apply((deadline.end_ns - time.perf_counter_ns()) / 1e9)
            result = run_job(spec, runtime, info, on_phase, deadline, rss_before, canary=canary)
        finally:
            if session is not None and session.restore():
                log.error("power mode %s not restored: %s", spec.power_mode.name, session.restore_fault)
            if timer is not None:
                timer.cancel()
        if session is not None:
            result["power_mode"] = session.record()
        lat = result["latency"]
        log.info("result: n=%d p50=%.4f ms precision=%s", lat["n"], lat["p50_ms"], result["precision"])
        emit(result)
    except AgentError as exc:
        return _error(emit, job_id, exc)
    except Exception as exc:  # a bug in the agent: still one JSON error, traceback on stderr
        log.error("internal agent error:\n%s", traceback.format_exc())
        return _error(emit, job_id, MeasurementError("internal agent error: %s: %s" % (type(exc).__name__, exc)))
    return 0


def probe(runtimes: Optional[str], emit: Emitter) -> int:
    """The ``probe`` command: one facts event with every requested runtime's availability."""
    names = [n.strip() for n in runtimes.split(",") if n.strip()] if runtimes else default_probe_names()
    emit(probe_facts(names))
    return 0


def lease_command(action: str, lease_dir: Optional[str], emit: Emitter) -> int:
    """One ``lease`` event: state free, held or stale (show; a stale one says why), broken or
    free (break), and the holder. ``lease_dir`` None: the board's own (lease.board_dir)."""
    stale = None
    try:
        lease_dir = lease_dir or lease.board_dir()
        if action == "break":
            holder = lease.break_lease(lease_dir)
            state = "free" if holder is None else "broken"
        else:
            holder = lease.show(lease_dir)
            stale = None if holder is None else lease.vacancy(holder, time.time())
            state = "free" if holder is None else "stale" if stale else "held"
    except OSError as exc:
        emit({"event": "error", "kind": "LeaseError", "message": "lease in %s: %s"
              % (lease_dir or "the board's lease directory", exc)})
        return 1
    event: Dict[str, Any] = {"event": "lease", "state": state, "holder": holder}
    if stale:
        event["reason"] = stale
    emit(event)
    return 0


def main(argv: Optional[List[str]] = None, out: Optional[IO[str]] = None) -> int:
    """Entry point. ``out`` given (tests): events go there and fd 1 is left alone."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage to stderr
        return 2 if exc.code else 0
    if args.command is None:
        parser.print_usage(sys.stderr)
        return 2
    _setup_logging(args.log_level)
    real = out is None
    emit = Emitter(claim_stdout() if real else out)  # type: ignore[arg-type]
    if args.command == "probe":
        return probe(args.runtimes, emit)
    if args.command == "lease":
        return lease_command(args.action, args.dir, emit)
    if args.command == "serve":
        return serve(sys.stdin, emit, lambda path: measure(path, emit, watchdog=True, workdir=args.workdir),
                     args.workdir)
    return measure(args.spec, emit, watchdog=real, workdir=args.workdir)
