"""The local transport: argv (no shell), streaming, put-by-hash, timeouts kill the group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from harness.transport import LocalTransport, sha256_file
from harness.errors import CommandTimeout


def test_run_streams_lines_and_never_uses_a_shell(tmp_path: Path) -> None:
    t = LocalTransport(str(tmp_path / "work"))
    t.connect()
    seen: list[str] = []
    weird = "a b; rm -rf / $(x) 'q'"
    res = t.run([sys.executable, "-c", "import sys; print(sys.argv[1]); print('two'); print('err', file=sys.stderr)", weird],
                timeout_s=30, on_line=seen.append)
    assert res.exit_code == 0 and seen == [weird, "two"] and res.stderr.strip() == "err"


def test_base_env_replaces_the_workers_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    t = LocalTransport(str(tmp_path), base_env={"PATH": os.environ["PATH"]})
    res = t.run([sys.executable, "-c", "import os; print(os.environ.get('OMP_NUM_THREADS'))"], timeout_s=30)
    assert res.stdout.strip() == "None"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    t = LocalTransport(str(tmp_path))
    pidfile = tmp_path / "child.pid"
    # The child spawns a grandchild that would outlive a plain kill of the child.
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    start = time.monotonic()
    with pytest.raises(CommandTimeout):
        t.run([sys.executable, "-c", code], timeout_s=1.5)
    assert time.monotonic() - start < 10
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("grandchild survived the timeout")


def test_put_by_hash_skips_what_is_there(tmp_path: Path) -> None:
    t = LocalTransport(str(tmp_path / "work"))
    t.connect()
    src = tmp_path / "model.onnx"
    src.write_bytes(b"weights" * 100)
    remote = t.put_by_hash(src)
    assert remote == f"{tmp_path}/work/cache/{sha256_file(src)}.onnx" and Path(remote).read_bytes() == src.read_bytes()
    mtime = os.stat(remote).st_mtime_ns
    time.sleep(0.01)
    assert t.put_by_hash(src) == remote and os.stat(remote).st_mtime_ns == mtime
    assert t.uploaded_bytes == 700  # counted once: the second put sent nothing
    with open(remote, "r+b") as f:
        f.truncate(3)  # a board's power loss leaves a torn cache file
    assert t.put_by_hash(src) == remote and Path(remote).read_bytes() == src.read_bytes()
    assert t.uploaded_bytes == 1400  # sent again, whole


def test_the_agent_sees_the_runtimes_settings_but_not_the_coordinators_secrets() -> None:
    from harness.transport.local import agent_env

    env = {"PATH": "/usr/bin", "HOME": "/root", "LC_ALL": "C", "OMP_NUM_THREADS": "2", "PYTHONPATH": "/x",
           "CUDA_VISIBLE_DEVICES": "0", "GITHUB_TOKEN": "ghp_secret", "AWS_SECRET_ACCESS_KEY": "s", "CI_JOB_TOKEN": "t",
           "SSH_AUTH_SOCK": "/tmp/agent"}
    assert agent_env(env) == {k: env[k] for k in ("PATH", "HOME", "LC_ALL", "OMP_NUM_THREADS", "PYTHONPATH",
                                                  "CUDA_VISIBLE_DEVICES")}
