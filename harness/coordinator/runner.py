"""Runs one job on one device through its transport. Plain class: Ray wraps it in an actor."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.transport import LocalTransport, SSHTransport, Transport
from harness.config import Device
from harness.config.inventory import DEFAULTS
from harness.coordinator.protocol import make_spec, parse_events, result_from_events
from harness.errors import HarnessError, TransportError
from harness.records import Job, JobResult

log = logging.getLogger("edge_harness.coordinator")

# The agent enforces measure.timeout_s itself; the transport waits this much longer
# before killing it, so a hung agent or board can never hang the sweep.
GRACE_S = 60.0


@dataclass(frozen=True)
class Payload:
    """What a job needs on the device besides its settings (built on the coordinator)."""

    artifact: Path
    sha256: str
    input_shape: tuple[int, ...]
    eval_path: Path | None
    variant: dict[str, Any]
    format: str = "onnx"
    weights: Path | None = None  # the separate weights file of formats that have one


def open_transport(device: Device, driver_env: dict[str, str]) -> Transport:
    """The transport for a device: its own machine for kind local, SSH for every other kind.

    Builds the object only (no network). The built-in default port 22 is passed as "unset" so a ``~/.ssh/config`` alias's
    ``Port`` still applies; an explicit inventory port always wins.
    """
    if device.kind == "local":
        return LocalTransport(device.workdir, base_env=driver_env)
    assert device.host is not None  # the inventory model requires it for non-local kinds
    return SSHTransport(
        device.host, workdir=device.workdir or DEFAULTS["workdir"],
        port=None if device.port in (None, DEFAULTS["port"]) else device.port, user=device.user,
        key_file=os.path.expanduser(device.key) if device.key else None,
        known_hosts=os.path.expanduser(device.known_hosts or DEFAULTS["known_hosts"]),
        host_key_policy=device.host_key_policy or "strict",
    )  # fmt: skip


def agent_python(device: Device) -> str:
    """The interpreter that runs the agent: the inventory's, else (only kind local leaves it
    unset) the coordinator's own, which has the runtimes installed."""
    return device.python or sys.executable


class DeviceRunner:
    def __init__(self, device: Device, agent_pyz: Path, driver_env: dict[str, str]):
        self.device = device
        self.agent_pyz = agent_pyz
        self.transport = open_transport(device, driver_env)
        self.python = agent_python(device)
        self._connected = False

    def _connect(self) -> None:
        if not self._connected:
            self.transport.connect()
            self._connected = True

    def run_job(self, job: Job, job_id: str, payload: Payload) -> JobResult:
        """Measure ``job``; every failure becomes a failed JobResult, never an exception."""
        started = time.monotonic()
        try:
            result = self._run(job, job_id, payload)
        except TransportError as e:
            self._connected = False
            result = JobResult("failed", f"{type(e).__name__}: {e}", details={"retryable": True})
        except HarnessError as e:
            result = JobResult("failed", f"{type(e).__name__}: {e}")
        result.variant = payload.variant
        result.details["wall_s"] = round(time.monotonic() - started, 3)
        return result

    def _run(self, job: Job, job_id: str, payload: Payload) -> JobResult:
        self._connect()
        t = self.transport
        agent = t.put_by_hash(self.agent_pyz)
        artifact = t.put_by_hash(payload.artifact, payload.sha256)
        weights = t.put_by_hash(payload.weights) if payload.weights else None
        eval_remote = t.put_by_hash(payload.eval_path) if payload.eval_path else None
        spec = make_spec(job, job_id, artifact, payload.sha256, payload.input_shape, eval_remote, payload.format, weights)
        spec_path = f"{t.workdir}/jobs/{job_id}.json"
        t.write_text(spec_path, json.dumps(spec, indent=1))
        timeout = float(job.settings["measure"]["timeout_s"]) + GRACE_S
        res = t.run([self.python, agent, "measure", spec_path], timeout_s=timeout)
        if res.stderr.strip():
            log.debug("agent stderr for %s on %s:\n%s", job.label(), self.device.name, res.stderr.strip())
        return result_from_events(parse_events(res.stdout), res.exit_code, res.stderr)

    def close(self) -> None:
        self.transport.close()
