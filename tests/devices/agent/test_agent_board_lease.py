"""The lease is the board's, not a work directory's: the agent keeps it in one place per board
(``lease.board_dir``: $EDGE_HARNESS_LEASE_DIR, else /tmp/edge-harness-<uid>), so two
inventories that give one board two work directories still exclude each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_testlib import REPO, make_spec, write_classifier

from devices.agent import lease

OTHER = {"owner": "run-b", "host": "nightly", "pid": 202, "job_id": "run-b-7"}


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """/tmp as the agent sees it, with no EDGE_HARNESS_LEASE_DIR set."""
    monkeypatch.delenv(lease.LEASE_DIR_ENV, raising=False)
    monkeypatch.setattr(lease, "_TMP", str(tmp_path))
    return tmp_path


def test_the_default_place_is_a_private_directory_per_user(tmp_root: Path) -> None:
    path = lease.board_dir()
    assert path == str(tmp_root / f"edge-harness-{os.getuid()}")
    st = os.lstat(path)
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == os.getuid()
    assert lease.board_dir() == path  # found again, not remade
    assert lease.try_acquire(path, OTHER, ttl_s=60).granted


@pytest.mark.parametrize("plant", ["symlink", "file", "open-dir"])
def test_a_name_planted_in_tmp_is_refused(tmp_root: Path, plant: str) -> None:
    path = tmp_root / f"edge-harness-{os.getuid()}"
    target = tmp_root / "attacker"
    target.mkdir()
    if plant == "symlink":
        path.symlink_to(target)
    elif plant == "file":
        path.write_text("")
    else:
        path.mkdir()
        path.chmod(0o777)
    with pytest.raises(OSError, match="is not a directory of this user's own") as e:
        lease.board_dir()
    assert str(path) in str(e.value) and lease.LEASE_DIR_ENV in str(e.value)
    assert not list(target.iterdir())  # nothing written through the planted name


def test_the_board_may_name_its_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lease.LEASE_DIR_ENV, str(tmp_path / "leases" / "here"))
    assert lease.board_dir() == str(tmp_path / "leases" / "here") and (tmp_path / "leases" / "here").is_dir()


def _serve(env_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "devices.agent", "serve"], cwd=REPO, text=True,
                            env={**os.environ, lease.LEASE_DIR_ENV: str(env_dir)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _event(proc: subprocess.Popen[str]) -> dict:
    return json.loads(proc.stdout.readline())


def test_jobs_from_two_work_directories_wait_for_the_one_board_lease(tmp_path: Path) -> None:
    """A job line names no lease directory: the server takes the board's, whatever the spec's work directory."""
    board = tmp_path / "board-lease"
    theirs = lease.try_acquire(str(board), OTHER, ttl_s=60)  # held from another work directory
    model = write_classifier(tmp_path / "m.onnx")
    spec = tmp_path / "team-a" / "jobs" / "a-1.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps(make_spec(model, "sleep", job_id="a-1", runtime_options={"latency_ms": 1})))
    terms = {"owner": "run-a", "host": "ci-1", "pid": 101, "ttl_s": 60, "wait_s": 30, "job_id": "a-1"}
    proc = _serve(board)
    try:
        assert _event(proc)["event"] == "ready"
        proc.stdin.write(json.dumps({"cmd": "job", "spec": str(spec), "lease": terms}) + "\n")
        proc.stdin.flush()
        waiting = _event(proc)
        assert waiting["state"] == "waiting" and waiting["holder"]["owner"] == "run-b"
        time.sleep(0.5)
        assert lease.release(str(board), theirs.lease["token"])
        events = [_event(proc)]
        while events[-1]["event"] != "exit":
            events.append(_event(proc))
        assert events[0]["state"] == "granted" and events[-1]["code"] == 0
        assert not list((tmp_path / "team-a").rglob("lease.*"))  # nothing of the lease in the work directory
    finally:
        proc.stdin.close()
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


def test_lease_show_and_break_default_to_the_board_lease(tmp_path: Path) -> None:
    board = tmp_path / "board-lease"
    lease.try_acquire(str(board), OTHER, ttl_s=60)
    env = {**os.environ, lease.LEASE_DIR_ENV: str(board)}
    for action, state in (("show", "held"), ("break", "broken"), ("show", "free")):
        out = subprocess.run([sys.executable, "-m", "devices.agent", "lease", action], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
        [event] = [json.loads(line) for line in out.stdout.splitlines()]
        assert out.returncode == 0 and event["state"] == state, out.stderr
