"""Runs one job on one device through its transport.

A plain class: its site's actor (site.py) holds one per board and calls it only from that
board's own thread, so nothing here is shared with another board but the process. What a
runner touches of the process is thread-safe or per board: its transport, agent server and
one-time costs are its own, commands run in their own working directory and environment
(never ``os.chdir`` or ``os.environ``), lease heartbeats ride its own reads (no thread, no
signal), its logs name its board, and the staged files' view (``Stager.for_board``) counts
its own bytes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devices.agent.serve import STDERR_END
from devices.agent.spec import Artifact
from harness.config import Device
from harness.coordinator.files import FileRef, Stager
from harness.coordinator.lease import LeaseTerms, LeaseWatch, board_busy
from harness.coordinator.protocol import (
    canary_spec,
    encode_spec,
    job_output,
    load_line,
    make_spec,
    parse_events,
    telemetry_spec,
)
from harness.errors import AgentError, ConnectError, HarnessError, TransportError
from harness.records import Job, JobResult
from harness.tasks.plan import TaskPlan
from harness.variants.feeds import GraphInput
from harness.transport import open_transport
from harness.transport.base import FILE_OP_TIMEOUT_S, Session

log = logging.getLogger("edge_harness.coordinator")

# How long a re-probe of a down board may take to run its trivial command.
PROBE_TIMEOUT_S = 20.0
# How long the board's agent server may take to start (an interpreter and numpy, cold disk).
SERVE_START_S = 60.0
# How long it may take to say whether the job has the board's lease (a file lock: at once).
LEASE_ANSWER_S = 30.0


@dataclass(frozen=True)
class Payload:
    """What a job needs on the device besides its settings (built on the coordinator)."""

    artifact: FileRef
    input_shape: tuple[int, ...]
    eval: FileRef | None
    variant: dict[str, Any]
    format: str = "onnx"
    weights: FileRef | None = None  # the separate weights file of formats that have one
    canary: Payload | None = None  # the board canary, interleaved with the job in its process
    task: TaskPlan | None = None  # what the eval set measures (``eval`` is then the task's npz)
    inputs: tuple[GraphInput, ...] = ()  # every input of the model's graph (``Variant.inputs``); () unknown


def agent_python(device: Device) -> str:
    """The interpreter that runs the agent: the inventory's, else (only kind local leaves it
    unset) the coordinator's own, which has the runtimes installed."""
    return device.python or sys.executable


class DeviceRunner:
    """Holds one board's connection (one runner per board, used from one thread). ``grace_s``:
    the agent enforces measure.timeout_s itself; the transport kills the job this much later,
    so a hung agent or a cut link cannot hang the sweep.
    ``lease``: each job holds the board's lease (another coordinator may want the board too);
    ``notices``: the driver's ``Notices`` actor, told when a job waits for a held board."""

    def __init__(self, device: Device, agent: FileRef, driver_env: dict[str, str], stager: Stager, grace_s: float,
                 lease: LeaseTerms | None = None, notices: Any = None):
        self.device = device
        self.agent = agent
        self.stager = stager
        self.grace_s = grace_s
        self.lease = lease or LeaseTerms()
        self.notices = notices
        self.transport = open_transport(device, driver_env)
        self.python = agent_python(device)
        self._connected = False
        self._server: Session | None = None  # the agent's ``serve`` on the board, while it lives
        self._server_agent = ""
        self._setup_s: dict[str, float] = {}  # one-time costs paid by the next result (connect, server start)

    def _connect(self) -> None:
        if not self._connected:
            t0 = time.monotonic()
            self.transport.connect()
            self._connected = True
            self._setup_s["connect_s"] = round(time.monotonic() - t0, 4)

    def run_job(self, job: Job, job_id: str, payload: Payload) -> JobResult:
        """Measure ``job``; every failure becomes a failed JobResult, never an exception."""
        started, sent = time.monotonic(), self.transport.uploaded_bytes
        try:
            result = self._run(job, job_id, payload)
        except TransportError as e:
            self._connected = False
            self._drop_server()
            result = JobResult("failed", f"{type(e).__name__}: {e}", details={"retryable": True})
        except HarnessError as e:
            result = JobResult("failed", f"{type(e).__name__}: {e}")
        result.variant = payload.variant
        result.details["wall_s"] = round(time.monotonic() - started, 3)
        result.details["uploaded_bytes"] = self.transport.uploaded_bytes - sent
        if getattr(self.transport, "transfer", ""):  # SSH: how files reached the board (sftp, or exec without SFTP)
            result.details["transfer"] = self.transport.transfer  # type: ignore[attr-defined]
        result.details.update(self._setup_s)
        self._setup_s = {}
        result.details["board"] = self.device.name
        result.details["ray_node"] = _node_id()
        if self.stager.fetched_bytes:
            result.details["staged_bytes"] = self.stager.fetched_bytes
        return result

    def warm(self) -> None:
        """Connect and start the agent server ahead of the first job. A fault is left for that
        job to meet: it reconnects, and reports the fault as its own if it persists."""
        try:
            self._connect()
            self._serve(self._put(self.agent))
        except HarnessError as e:
            log.info("warming %s failed (its first job will retry): %s", self.device.name, e)
            self._drop_server()
            self._connected = False

    def probe(self) -> str | None:
        """Reconnect and run a trivial command: None if the board answers, else why not."""
        self._drop_server()
        self.transport.close()
        self._connected = False
        try:
            self._connect()
            res = self.transport.run([self.python, "-c", "pass"], timeout_s=PROBE_TIMEOUT_S)
        except HarnessError as e:
            return f"{type(e).__name__}: {e}"
        return None if res.exit_code == 0 else f"{self.python} exited with {res.exit_code}: {res.stderr.strip()[-200:]}"

    def _put(self, ref: FileRef) -> str:
        return self.transport.put_by_hash(self.stager.local(ref), ref.sha256)

    def _artifact(self, payload: Payload) -> Artifact:
        """The payload's model file (and weights file) on the board."""
        weights = self._put(payload.weights) if payload.weights else None
        return Artifact(self._put(payload.artifact), payload.format, payload.artifact.sha256, weights)

    def _run(self, job: Job, job_id: str, payload: Payload) -> JobResult:
        t = self.transport
        timeout = job.settings.measure.timeout_s + self.grace_s
        # Every network wait of the job (connect, uploads, starting the server) is bounded by its budget.
        t.op_timeout_s = min(FILE_OP_TIMEOUT_S, timeout)
        self._connect()
        agent = self._put(self.agent)
        eval_remote = self._put(payload.eval) if payload.eval else None
        c = payload.canary
        canary = canary_spec(job, self._artifact(c), c.input_shape) if c is not None else None
        spec = make_spec(job, job_id, self._artifact(payload), payload.input_shape, eval_remote,
                         telemetry_spec(self.device), canary, payload.task.settings if payload.task else None,
                         payload.inputs)
        spec_path = f"{t.workdir}/jobs/{job_id}.json"
        t.write_text(spec_path, encode_spec(spec))
        server = self._serve(agent)
        server.send_line(self.lease.job_line(spec_path, job_id))
        watch = LeaseWatch(self.device.name, self._notify)
        # Three clocks: the board says at once whether it has the lease; a wait for a board another
        # coordinator holds has its own limit; the job gets its full time once it runs.
        try:
            answer = server.read_until(_is_event("exit"), timeout_s=LEASE_ANSWER_S, stderr_end=STDERR_END.encode(),
                                       heartbeat=self.lease.heartbeat(server.send_line),
                                       restart=lambda line: watch.restart(line, self.lease.wait_s + self.grace_s,
                                                                          timeout))
        finally:
            watch.clear()
        if answer.stderr.strip():
            log.debug("agent stderr for %s on %s:\n%s", job.label(), self.device.name, answer.stderr.strip())
        events = parse_events("".join(answer.lines))
        busy = board_busy(events)
        if busy is not None:
            return JobResult("failed", busy)
        result = job_output(events, answer.stderr)
        if payload.task is not None or "task_output" in result.details:
            from harness.tasks.score import score_task

            result = score_task(result, payload.task, self.stager.local(payload.eval) if payload.eval else None)
        result.details["agent_s"] = round(answer.duration_s, 4)  # spec sent to the job's process exited
        if watch.waited_s is not None:
            result.details["lease_wait_s"] = watch.waited_s
        if watch.took_over is not None:
            result.details["lease_taken_over"] = watch.took_over
        return result

    def _notify(self, board: str, note: str | None) -> None:
        if self.notices is not None:
            self.notices.post.remote(board, note)  # fire and forget: a note must never hold up a job

    def _serve(self, agent: str) -> Session:
        """The board's warm agent server (started on first use and after any transport fault)."""
        if self._server is not None and self._server_agent == agent and not self._server.ended:
            return self._server
        self._drop_server()
        t0 = time.monotonic()
        # --workdir: the server removes the board's old job specs and dead partial uploads there.
        server = self.transport.start([self.python, agent, "serve", "--workdir", self.transport.workdir])
        try:
            server.read_until(_is_event("ready"), timeout_s=SERVE_START_S)
        except ConnectError as e:
            if server.ended:  # it ran and quit: no interpreter, a broken install, a read-only disk...
                raise AgentError(f"the agent could not start on {self.device.name} with {self.python}: {e}") from None
            raise
        self._server, self._server_agent = server, agent
        self._setup_s["serve_start_s"] = round(time.monotonic() - t0, 4)
        return server

    def _drop_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def close(self) -> None:
        self._drop_server()
        self.transport.close()


def _is_event(name: str) -> Callable[[str], bool]:
    marker = f'"event":"{name}"'  # the agent writes compact JSON

    def match(line: str) -> bool:
        if marker not in line:
            return False
        event = load_line(line)
        return event is not None and event.get("event") == name

    return match


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
