"""``harness inventory check`` over real OpenSSH servers (the ``ssh_lab`` fixture)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.cli import main


def test_ssh_devices_ok_unknown_host_key_and_missing_python(ssh_lab, tmp_path: Path,  # noqa: ANN001
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    hosts = ssh_lab(2)
    for h in hosts:
        h.start()
    empty_known_hosts = tmp_path / "empty_known_hosts"
    empty_known_hosts.write_text("")

    def device(name: str, h, **over: object) -> dict:  # noqa: ANN001
        return {"name": name, "kind": "generic", "host": h.address, "port": h.port, "user": h.user,
                "key": str(h.key), "known_hosts": str(h.known_hosts), "python": sys.executable,
                "workdir": str(tmp_path / f"work-{name}"), "runtimes": ["onnxruntime"], **over}

    # Separate workdirs whose parent exists: the lab hosts share this machine's filesystem, and
    # concurrent SFTP mkdirs of one shared parent race (stat, then mkdir fails if another won).
    devices = [device("good", hosts[0]), device("stranger", hosts[1], known_hosts=str(empty_known_hosts)),
               device("nopy", hosts[1], python="/nonexistent/python3")]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(json.dumps({"devices": devices}))
    code = main(["inventory", "check", "--inventory", str(inventory), "--json", "--cache-dir", str(tmp_path / "c"),
                 "--timeout", "20"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    good = checks["good"]
    assert good["ok"], good["reason"]
    assert code == 3 and good["rtt_ms"] > 0 and good["runtimes"]["onnxruntime"]["version"]
    assert good["facts"]["host"]["arch"]
    assert not checks["stranger"]["ok"] and checks["stranger"]["reason"].startswith("host key: unknown host key")
    assert not checks["nopy"]["ok"] and checks["nopy"]["reason"].startswith("no python at /nonexistent/python3")
