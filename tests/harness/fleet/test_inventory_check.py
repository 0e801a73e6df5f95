"""``harness inventory check``: the real local device, a missing python, failure classification, parallelism."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import harness.fleet.check as check_mod
from harness.transport.base import CommandResult, Session, Transport
from harness.cli import main
from harness.config import Device
from harness.errors import AuthError, CommandTimeout, ConnectError
from harness.fleet import check_inventory
from harness.fleet.check import classify_probe, error_reason
from harness.fleet.leases import lease_text
from harness.fleet.table import check_table, runtimes_cell, sensors_cell


def inventory(tmp_path: Path, devices: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"defaults:\n  workdir: {tmp_path / 'work'}\ndevices:\n{devices}")
    return path


def test_local_device_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "check", "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    [local] = json.loads(capsys.readouterr().out)
    assert local["name"] == "local" and local["ok"] and local["reason"] is None and local["rtt_ms"] > 0
    for name in ("onnxruntime", "openvino", "litert"):
        assert local["runtimes"][name]["available"] and local["runtimes"][name]["version"]
    assert "CPU" in local["runtimes"]["openvino"]["devices"]
    assert local["runtimes"]["litert"]["library"] == "ai-edge-litert"
    host = local["facts"]["host"]
    assert host["arch"] and host["kernel"] and host["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert "runtimes" not in local["facts"]


def test_missing_python_is_exit_3_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = inventory(tmp_path, "  - {name: good, kind: local, runtimes: [onnxruntime]}\n"
                              "  - {name: nopy, kind: local, runtimes: [onnxruntime], python: /nonexistent/python3}\n")
    assert main(["inventory", "check", "--inventory", str(inv), "--cache-dir", str(tmp_path / "c")]) == 3
    text = capsys.readouterr().out
    assert "good" in text and "onnxruntime" in text and re.search(r"│ 1\.\d+\.\d+ ", text)  # its version (the cell wraps)
    assert "nopy: no python at /nonexistent/python3" in text
    assert main(["inventory", "check", "--inventory", str(inv), "--devices", "good", "--json",
                 "--cache-dir", str(tmp_path / "c")]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)] == ["good"]


def test_unknown_device_name_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "check", "--devices", "local,ghost", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ghost" in err and "the inventory has: local" in err


FACTS = {"event": "facts", "python": "3.8.10", "host": {"arch": "aarch64"}, "runtimes": {
    "onnxruntime": {"name": "onnxruntime", "version": "1.16.3", "available": True, "devices": ["CPUExecutionProvider"]},
    "openvino": {"name": "openvino", "version": None, "available": False, "devices": [],
                 "reason": "openvino is not installed: No module named 'openvino'"},
}}


def result(stdout: str = "", stderr: str = "", code: int = 0) -> CommandResult:
    return CommandResult(code, stdout, stderr, 0.1)


def test_a_runtime_the_board_lacks_is_not_ok() -> None:
    facts, runtimes, reason = classify_probe(["onnxruntime", "openvino"], "python3", result(json.dumps(FACTS) + "\n"))
    assert reason == "runtime openvino not available: openvino is not installed: No module named 'openvino'"
    assert runtimes["onnxruntime"] == {"available": True, "version": "1.16.3", "devices": ["CPUExecutionProvider"],
                                       "reason": None}
    assert facts["host"] == {"arch": "aarch64"} and "runtimes" not in facts
    _, _, reason = classify_probe(["onnxruntime"], "python3", result(json.dumps(FACTS)))
    assert reason is None
    _, runtimes, reason = classify_probe(["tensorrt"], "python3", result(json.dumps(FACTS)))
    assert reason == "runtime tensorrt not available: not reported by the agent" and not runtimes["tensorrt"]["available"]


@pytest.mark.parametrize(("res", "expected"), [
    (result(stderr="bash: line 1: /opt/py/bin/python3: No such file or directory\n", code=127),
     "no python at /opt/py/bin/python3: bash: line 1: /opt/py/bin/python3: No such file or directory"),
    (result(stderr="sh: 1: python3: not found\n", code=127), "no python at python3: sh: 1: python3: not found"),
    (result(stderr="Traceback ...\nModuleNotFoundError: No module named 'numpy'\n", code=1),
     "probe failed on python3: ModuleNotFoundError: No module named 'numpy'"),
    (result(stdout="garbage\n", code=0), "probe failed (exit 0): no facts event on stdout"),
])
def test_probe_without_facts(res: CommandResult, expected: str) -> None:
    py = "/opt/py/bin/python3" if "/opt/py" in res.stderr else "python3"
    assert classify_probe(["onnxruntime"], py, res) == ({}, {}, expected)


def test_transport_errors_become_one_line_reasons() -> None:
    assert error_reason(AuthError("pi@10.0.0.5: publickey denied"), 30) == "auth failed: pi@10.0.0.5: publickey denied"
    assert error_reason(ConnectError("unknown host key for jet1; ssh-keyscan ..."), 30).startswith("host key: ")
    assert error_reason(CommandTimeout("python3 timed out after 30 s"), 12.5) == "timeout after 12.5 s"
    assert error_reason(ConnectError("10.0.0.9:22: connection refused\nretry"), 30) == \
        "connect: 10.0.0.9:22: connection refused retry"
    assert error_reason(RuntimeError("boom"), 30) == "error: RuntimeError: boom"


HELD = {"event": "lease", "state": "held", "holder": {"owner": "20261123-043512-9f3a", "host": "ci-7", "pid": 4242,
                                                      "job_id": "20261123-043512-9f3a-3", "started": 0.0,
                                                      "expires": 60.0}}


class FakeTransport(Transport):
    """Sleeps in connect; fails as told; answers the probe with FACTS, the lease with HELD."""

    name = "fake"

    def __init__(self, fail: Exception | None, calls: list[str]):
        super().__init__("/fake")
        self.fail, self.calls = fail, calls

    @classmethod
    def for_device(cls, device: object, driver_env: dict[str, str]) -> FakeTransport:
        raise NotImplementedError  # the test builds its own (open_transport is patched)

    def connect(self) -> None:
        time.sleep(0.4)
        if self.fail is not None:
            raise self.fail

    def run(self, argv: list[str], timeout_s: float, on_line: Callable[[str], None] | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        self.calls.append(argv[0] if argv[0] == "true" else " ".join(argv[2:]))
        return result(json.dumps(FACTS) if "probe" in argv else json.dumps(HELD) if "lease" in argv else "")

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> Session:
        raise AssertionError("a check runs single commands, never a session")

    def size(self, remote: str) -> int | None:
        return len(b"zip")  # the test's agent, cached on the board already

    def put(self, local: Path, remote: str) -> None:
        raise AssertionError("already there")

    def write_text(self, remote: str, text: str) -> None:
        raise AssertionError("not needed")

    def close(self) -> None:
        self.calls.append("close")


def test_devices_are_checked_in_parallel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fails = {"a": None, "b": AuthError("denied"), "c": CommandTimeout("slow"), "d": None}
    calls: list[str] = []
    lock = threading.Lock()

    def fake_open(device: Device, env: dict[str, str]) -> Transport:
        with lock:
            return FakeTransport(fails[device.name], calls)

    monkeypatch.setattr(check_mod, "open_transport", fake_open)
    devices = [Device(name=n, kind="x86", host=f"{n}.lab", runtimes=("onnxruntime",)) for n in fails]
    agent = tmp_path / "agent.pyz"
    agent.write_bytes(b"zip")
    start = time.monotonic()
    checks = check_inventory(devices, agent, {}, timeout_s=7)
    assert time.monotonic() - start < 1.2  # four 0.4 s connects at once, not one after another
    assert [(c.name, c.ok, c.reason) for c in checks] == [
        ("a", True, None), ("b", False, "auth failed: denied"), ("c", False, "timeout after 7 s"), ("d", True, None)]
    assert calls.count("close") == 4 and calls.count("true") == 6
    assert checks[0].runtimes["onnxruntime"]["version"] == "1.16.3" and checks[0].rtt_ms == 100.0
    table = check_table(checks)
    assert table.row_count == 4 and len(table.columns) == 16
    assert checks[0].lease == HELD and checks[1].lease is None
    assert "lease show" in calls  # the board's own lease (no --dir: not one of a work directory)
    assert lease_text(checks[0].lease) == "20261123-043512-9f3a@ci-7 pid 4242 since 1970-01-01 00:00:00 UTC"
    assert lease_text({"state": "stale", "holder": HELD["holder"], "reason": "expired at x"}).endswith(
        "UTC, stale: expired at x")
    assert lease_text({"state": "free", "holder": None}) == "free" and lease_text(None) == "-"


def test_table_cells() -> None:
    assert runtimes_cell({"onnxruntime": {"available": True, "version": "1.16.3", "devices": ["CUDAExecutionProvider"]},
                          "tensorrt": {"available": False}}) == "onnxruntime 1.16.3 [CUDA]\ntensorrt (missing)"
    assert runtimes_cell({"litert": {"available": True, "version": "2.14.0", "devices": ["CPU"],
                                     "library": "tflite-runtime"}}) == "litert 2.14.0 (tflite-runtime) [CPU]"
    assert sensors_cell([{"source": "rapl", "name": "intel-rapl:0", "label": "package-0", "readable": False},
                         {"source": "hwmon", "name": "ina3221", "label": "hwmon1"}]) == \
        "intel-rapl:0(package-0) (no read), ina3221"
    assert sensors_cell([]) == "-"
