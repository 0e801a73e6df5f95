"""``harness inventory check`` names who holds each board; ``harness lease break DEVICE``
frees one by hand. A local device stands in for a board: the lease is this machine's (the
session's EDGE_HARNESS_LEASE_DIR, tests/conftest.py), whatever the device's work directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.agent import lease
from harness.cli import main

HOLDER = {"owner": "20261123-043512-9f3a", "host": "nightly-1", "pid": 202, "job_id": "20261123-043512-9f3a-7"}


def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"devices:\n  - {{name: bench, kind: local, workdir: {tmp_path / 'board'}, runtimes: [sleep]}}\n")
    return path


def test_check_names_the_holder_and_break_frees_the_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv, cache = inventory(tmp_path), str(tmp_path / "cache")
    lease.try_acquire(lease.board_dir(), HOLDER, ttl_s=600)
    assert main(["inventory", "check", "--inventory", str(inv), "--json", "--cache-dir", cache]) == 0
    [check] = json.loads(capsys.readouterr().out)
    assert check["lease"]["state"] == "held" and check["lease"]["holder"]["owner"] == HOLDER["owner"]
    assert "token" not in check["lease"]["holder"]

    assert main(["lease", "break", "bench", "--inventory", str(inv), "--cache-dir", cache]) == 0
    said = capsys.readouterr().out
    assert "bench: freed the lease held by 20261123-043512-9f3a@nightly-1 pid 202 since " in said
    assert "(job 20261123-043512-9f3a-7)" in said
    assert lease.show(lease.board_dir()) is None

    assert main(["lease", "break", "bench", "--inventory", str(inv), "--cache-dir", cache]) == 0
    assert "bench: the lease was free" in capsys.readouterr().out
    assert main(["inventory", "check", "--inventory", str(inv), "--cache-dir", cache]) == 0
    assert " free" in capsys.readouterr().out


def test_an_unknown_device_is_a_clear_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lease", "break", "ghost", "--inventory", str(inventory(tmp_path)),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'ghost'" in err and "the inventory has: bench" in err
