"""The SSH transport against real OpenSSH servers (the ``ssh_lab`` fixture).

The servers run on this machine (in network namespaces when possible), so "remote" files
are local files: a test can check what arrived, and which processes died, directly.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.transport import SSHTransport, sha256_file
from harness.transport.ssh import KILL_WAIT_S
from harness.errors import AuthError, CommandTimeout, ConnectError, TransportError
from tests.sshlab import LabHost, wait_gone

@pytest.fixture
def host(ssh_lab) -> LabHost:  # noqa: ANN001
    h = ssh_lab(1)[0]
    h.start()  # a fault test may have killed it
    return h


def make(h: LabHost, workdir: str | Path, **kw: object) -> SSHTransport:
    settings: dict = {"port": h.port, "user": h.user, "key_file": str(h.key), "known_hosts": str(h.known_hosts),
                      "ssh_config": None, **kw}
    return SSHTransport(h.address, workdir=str(workdir), **settings)


def connected(h: LabHost, workdir: str | Path, **kw: object) -> SSHTransport:
    t = make(h, workdir, **kw)
    t.connect()
    return t


def test_run_streams_lines_exit_code_and_stderr(host: LabHost, tmp_path: Path) -> None:
    t = connected(host, tmp_path / "w")
    seen: list[str] = []
    code = ("import sys, time; print('one', flush=True); time.sleep(0.2); print('two'); "
            "print('bad', file=sys.stderr); sys.exit(7)")
    res = t.run([sys.executable, "-c", code], timeout_s=30, on_line=seen.append)
    assert (res.exit_code, seen, res.stdout, res.stderr) == (7, ["one", "two"], "one\ntwo\n", "bad\n")
    assert t.run(["pwd"], timeout_s=30).stdout.strip() == str(tmp_path / "w")  # runs inside the workdir
    t.close()


def test_argv_and_env_arrive_intact_and_nothing_is_executed(host: LabHost, tmp_path: Path) -> None:
    canary = Path(f"/tmp/pwned-{secrets.token_hex(4)}")
    weird = ["a b", "it's", '"dq"', f";$(touch {canary})", f"`touch {canary}`", "line1\nline2", "$HOME", "*", "-", ""]
    t = connected(host, tmp_path)
    res = t.run([sys.executable, "-c", "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['EH_X']]))",
                 *weird], timeout_s=30, env={"EH_X": f"v; $(touch {canary})"})
    assert json.loads(res.stdout) == [weird, f"v; $(touch {canary})"]
    assert not canary.exists()
    with pytest.raises(ValueError):
        t.run(["true"], timeout_s=5, env={"A; touch x": "1"})
    t.close()


@pytest.mark.parametrize("sftp", [True, False], ids=["sftp", "exec"])
def test_put_by_hash_uploads_once_into_a_hostile_workdir(host: LabHost, tmp_path: Path, sftp: bool) -> None:
    """Over SFTP, and piped over the exec channel for a board without SFTP; a cached copy
    truncated by a power loss on the board is sent again."""
    workdir = tmp_path / "work dir ;$(touch pwned) 'q'"
    host.set_sftp(sftp)
    try:
        _put_and_repair(connected(host, workdir), tmp_path, workdir, sftp)
    finally:
        host.set_sftp(True)


def _put_and_repair(t: SSHTransport, tmp_path: Path, workdir: Path, sftp: bool) -> None:
    assert t.transfer == ("sftp" if sftp else "exec")
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(300_000))
    remote = t.put_by_hash(src)
    assert remote == f"{workdir}/cache/{sha256_file(src)}.onnx"
    assert Path(remote).read_bytes() == src.read_bytes()
    mtime = os.stat(remote).st_mtime_ns
    time.sleep(0.02)
    assert t.put_by_hash(src) == remote and os.stat(remote).st_mtime_ns == mtime
    with open(remote, "r+b") as f:
        f.truncate(1000)
    assert t.put_by_hash(src) == remote and Path(remote).read_bytes() == src.read_bytes()
    t.write_text(f"{workdir}/jobs/spec.json", '{"ok": 1}')
    assert json.loads(Path(workdir, "jobs", "spec.json").read_text()) == {"ok": 1}
    assert not list(workdir.rglob("*.tmp-*")) and not (tmp_path / "pwned").exists()
    assert t.run(["ls", "cache"], timeout_s=30).stdout.split() == [Path(remote).name]
    t.close()


def test_tilde_workdir_is_expanded_on_the_board(host: LabHost) -> None:
    name = f".eh-test-{secrets.token_hex(4)}"
    t = connected(host, f"~/{name}/work")
    try:
        home = t.run(["sh", "-c", 'echo "$HOME"'], timeout_s=30).stdout.strip()
        assert t.workdir == f"{home}/{name}/work" and Path(t.workdir, "cache").is_dir()
    finally:
        t.close()
        shutil.rmtree(Path(home, name), ignore_errors=True)


def test_ssh_config_alias_supplies_host_port_user_and_key(host: LabHost, tmp_path: Path) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host board-alias\n  HostName {host.address}\n  Port {host.port}\n  User root\n"
                   f"  IdentityFile {host.key}\n")
    t = SSHTransport("board-alias", workdir=str(tmp_path), known_hosts=str(host.known_hosts), ssh_config=str(cfg))
    assert (t.endpoint.hostname, t.endpoint.port, t.endpoint.key_files) == (host.address, host.port, (str(host.key),))
    t.connect()
    assert t.run(["id", "-un"], timeout_s=30).stdout.strip() == "root"
    t.close()


def test_unknown_host_key_is_refused_under_strict(host: LabHost, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    with pytest.raises(AuthError) as e:
        connected(host, tmp_path, known_hosts=str(kh))
    assert "accept-new" in str(e.value) and "ssh-keyscan" in str(e.value) and str(kh) in str(e.value)
    assert kh.read_text() == ""


def test_accept_new_records_the_key_then_strict_trusts_it(host: LabHost, tmp_path: Path) -> None:
    kh = tmp_path / "sub" / "known_hosts"  # not there yet: accept-new creates it
    connected(host, tmp_path, known_hosts=str(kh), host_key_policy="accept-new").close()
    assert kh.read_text().split()[1:] == host.known_hosts_line().split()[1:]
    t = connected(host, tmp_path, known_hosts=str(kh))
    assert t.run(["true"], timeout_s=30).exit_code == 0
    t.close()
    assert len(kh.read_text().splitlines()) == 1


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_changed_host_key_is_always_refused(host: LabHost, tmp_path: Path, policy: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    name = host.known_hosts_line().split()[0]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{name} {(tmp_path / 'other.pub').read_text().split()[0]} "
                  f"{(tmp_path / 'other.pub').read_text().split()[1]}\n")
    before = kh.read_text()
    with pytest.raises(AuthError) as e:
        connected(host, tmp_path, known_hosts=str(kh), host_key_policy=policy)
    msg = str(e.value)
    assert "CHANGED" in msg and "ssh-keygen" in msg and "-R" in msg and str(kh) in msg
    assert kh.read_text() == before


def test_wrong_key_and_closed_port_map_to_auth_and_connect_errors(host: LabHost, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    with pytest.raises(AuthError, match="authentication failed"):
        connected(host, tmp_path, key_file=str(tmp_path / "stranger"))
    with pytest.raises(ConnectError, match="cannot reach"):
        connected(host, tmp_path, port=1, connect_timeout_s=3)


def test_timeout_kills_the_remote_grandchild_and_the_connection_survives(host: LabHost, tmp_path: Path) -> None:
    t = connected(host, tmp_path)
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    start = time.monotonic()
    seen: list[str] = []
    with pytest.raises(CommandTimeout, match="process group"):
        t.run([sys.executable, "-c", code], timeout_s=2, on_line=seen.append)
    assert time.monotonic() - start < 8 and seen == ["started"]
    assert wait_gone(int(pidfile.read_text())), "remote grandchild survived the timeout"
    assert t.run(["echo", "still here"], timeout_s=30).stdout == "still here\n"
    t.close()


def _in(seconds: float, fault) -> threading.Timer:  # noqa: ANN001
    timer = threading.Timer(seconds, fault)
    timer.start()
    return timer


def test_sshd_killed_mid_command_raises_a_transport_error(ssh_lab, tmp_path: Path) -> None:  # noqa: ANN001
    h = ssh_lab(2)[1]
    t = connected(h, tmp_path)
    start = time.monotonic()
    timer = _in(1.0, h.kill_all)
    try:
        with pytest.raises(ConnectError, match="connection lost"):
            t.run(["sleep", "20"], timeout_s=30)
        assert time.monotonic() - start < 10
    finally:
        timer.join()
        h.start()
    t.connect()  # the board is back: the same transport reconnects
    assert t.run(["true"], timeout_s=30).exit_code == 0
    t.close()


def test_link_down_mid_command_ends_within_the_timeout(ssh_lab, tmp_path: Path) -> None:  # noqa: ANN001
    h = ssh_lab(2)[1]
    h.start()
    h.link_up()  # skips, saying why, on a loopback lab
    t = connected(h, tmp_path)
    start = time.monotonic()
    timer = _in(1.0, h.link_down)
    try:
        with pytest.raises(TransportError):
            t.run(["sleep", "15"], timeout_s=3)
        # the timeout plus at most the bounded attempt to kill the remote group
        assert time.monotonic() - start < 3 + KILL_WAIT_S + 4
    finally:
        timer.join()
        h.link_up()
    t.connect()
    assert t.run(["true"], timeout_s=30).exit_code == 0
    t.close()
