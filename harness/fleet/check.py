"""``harness inventory check``: reach every device in parallel and report what it offers.

Per device: open its transport, connect, time a trivial command (round trip), put the
agent zipapp by hash, run ``agent probe`` and read the one ``facts`` event, then ``agent
lease show`` (who holds the board, since when). Every failure becomes a ``DeviceCheck``
with ``ok=False`` and a one-line reason, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.transport import Transport
from harness.transport.base import CommandResult
from harness.config import Device
from harness.coordinator.protocol import parse_events
from harness.coordinator.runner import agent_python
from harness.transport import open_transport
from harness.errors import AuthError, CommandTimeout, ConnectError, HarnessError, TransportError
from harness.fleet.leases import lease_event

RTT_SAMPLES = 3
MAX_WORKERS = 32


@dataclass
class DeviceCheck:
    name: str
    kind: str
    ok: bool = False
    reason: str | None = None  # one line when not ok
    rtt_ms: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # the probe's facts event, ``runtimes`` moved out
    runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)  # {name: {available, version, devices, reason[, library]}}
    lease: dict[str, Any] | None = None  # the agent's lease event: {state: free|held|expired, holder}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_inventory(devices: Sequence[Device], agent_pyz: Path, driver_env: dict[str, str],
                    timeout_s: float = 30) -> list[DeviceCheck]:
    """Check every device at once; results in the order of ``devices``."""
    if not devices:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(devices)), thread_name_prefix="check") as pool:
        futures = [pool.submit(check_device, d, agent_pyz, driver_env, timeout_s) for d in devices]
        return [f.result() for f in futures]


def check_device(device: Device, agent_pyz: Path, driver_env: dict[str, str], timeout_s: float = 30) -> DeviceCheck:
    check = DeviceCheck(device.name, device.kind)
    python = agent_python(device)
    try:
        transport = open_transport(device, driver_env)
    except Exception as e:  # noqa: BLE001 - a device the transport cannot even describe
        check.reason = f"config: {_line(e)}"
        return check
    try:
        _probe(check, device, transport, python, agent_pyz, timeout_s)
    except Exception as e:  # noqa: BLE001 - one device's failure must not hide the others
        check.ok, check.reason = False, error_reason(e, timeout_s)
    finally:
        try:
            transport.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass
    return check


def _probe(check: DeviceCheck, device: Device, t: Transport, python: str, agent_pyz: Path, timeout_s: float) -> None:
    t.connect()
    check.rtt_ms = round(min(t.run(["true"], timeout_s).duration_s for _ in range(RTT_SAMPLES)) * 1000, 2)
    agent = t.put_by_hash(agent_pyz)
    try:
        res = t.run([python, agent, "probe", "--runtimes", ",".join(device.runtimes)], timeout_s)
    except FileNotFoundError:  # the local transport could not even start the interpreter
        check.reason = f"no python at {python}"
        return
    check.facts, check.runtimes, reason = classify_probe(device.runtimes, python, res)
    check.ok, check.reason = reason is None, reason
    if check.facts:  # the agent runs there: it can read the lease too
        check.lease = lease_event(t, python, agent, "show", timeout_s)


def classify_probe(wanted: Sequence[str], python: str,
                   res: CommandResult) -> tuple[dict[str, Any], dict[str, dict[str, Any]], str | None]:
    """(facts, runtime statuses, reason or None) from one ``agent probe`` run."""
    facts = next((e for e in parse_events(res.stdout) if e.get("event") == "facts"), None)
    if facts is None:
        return {}, {}, _no_facts_reason(python, res)
    facts = dict(facts)
    reported = facts.pop("runtimes", None) or {}
    runtimes: dict[str, dict[str, Any]] = {}
    problems = []
    for name in wanted:
        info = reported.get(name) if isinstance(reported, dict) else None
        info = info if isinstance(info, dict) else {"available": False, "reason": "not reported by the agent"}
        runtimes[name] = {"available": bool(info.get("available")), "version": info.get("version"),
                          "devices": list(info.get("devices") or []), "reason": info.get("reason")}
        if info.get("library"):  # which package provides it (litert: ai-edge-litert or tflite-runtime)
            runtimes[name]["library"] = str(info["library"])
        if not runtimes[name]["available"]:
            problems.append(f"runtime {name} not available: {_oneline(info.get('reason') or 'no reason given')}")
    return facts, runtimes, "; ".join(problems) or None


def _no_facts_reason(python: str, res: CommandResult) -> str:
    stderr = res.stderr.strip()
    last = _oneline(stderr.splitlines()[-1]) if stderr else ""
    if res.exit_code == 127 or (res.exit_code != 0 and "command not found" in stderr):
        return f"no python at {python}" + (f": {last}" if last else "")
    if res.exit_code == 126:
        return f"python at {python} is not executable" + (f": {last}" if last else "")
    if "No module named" in stderr:
        return f"probe failed on {python}: {last}"
    return f"probe failed (exit {res.exit_code})" + (f": {last}" if last else ": no facts event on stdout")


def error_reason(e: BaseException, timeout_s: float) -> str:
    """One line naming what went wrong: host key, auth, timeout, connect."""
    text = _line(e)
    if "hostkey" in type(e).__name__.lower() or "host key" in text.lower():
        return f"host key: {text}"
    if isinstance(e, AuthError):
        return f"auth failed: {text}"
    if isinstance(e, CommandTimeout):
        return f"timeout after {timeout_s:g} s"
    if isinstance(e, ConnectError):
        return f"connect: {text}"
    if isinstance(e, TransportError):
        return f"transport: {text}"
    if isinstance(e, HarnessError):
        return f"{type(e).__name__}: {text}"
    return f"error: {type(e).__name__}: {text}"


def _oneline(text: str) -> str:
    return " ".join(str(text).split())[:300]


def _line(e: BaseException) -> str:
    return _oneline(str(e)) or type(e).__name__
