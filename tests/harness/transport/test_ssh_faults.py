"""Every network wait of the SSH transport is bounded (``op_timeout_s``, a job's budget), and
an upload reaches the board's disk before it gets its name; against real OpenSSH servers.

A cut link is real here: the lab's board sits behind a veth pair that the test takes down
(after slowing it with ``tc`` so an upload is surely under way when the link goes).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ConnectError
from harness.transport import SSHTransport, sha256_file
from tests.sshlab import LabHost


@pytest.fixture
def host(ssh_lab) -> LabHost:  # noqa: ANN001
    h = ssh_lab(1)[0]
    h.start()
    return h


def connected(h: LabHost, workdir: Path, **kw: object) -> SSHTransport:
    t = SSHTransport(h.address, workdir=str(workdir), port=h.port, user=h.user, key_file=str(h.key),
                     known_hosts=str(h.known_hosts), ssh_config=None, **kw)  # type: ignore[arg-type]
    t.connect()
    return t


@pytest.fixture
def slow_link(host: LabHost) -> Iterator[LabHost]:
    """The board's link at ~1 MB/s, restored (and up) after the test."""
    host.link_up()  # skips, saying why, on a loopback lab
    res = subprocess.run(["tc", "qdisc", "add", "dev", host.veth, "root", "tbf", "rate", "8mbit", "burst", "32kb",
                          "latency", "400ms"], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot slow the lab's link with tc: {res.stderr.strip()}")
    try:
        yield host
    finally:
        host.link_up()
        subprocess.run(["tc", "qdisc", "del", "dev", host.veth, "root"], capture_output=True)


def restart_with(h: LabHost, subsystem: str) -> str:
    """Restart the board's sshd with another SFTP subsystem line; returns the old config."""
    old = h.config.read_text()
    h.config.write_text(old.replace("Subsystem sftp internal-sftp\n", f"Subsystem sftp {subsystem}\n"))
    h.kill_all()
    h.proc = None
    h.start()
    return old


@pytest.mark.parametrize("sftp", [True, False], ids=["sftp", "exec"])
def test_a_link_cut_mid_upload_fails_within_the_op_timeout_and_the_board_is_reached_again(
        slow_link: LabHost, tmp_path: Path, sftp: bool) -> None:
    h = slow_link
    h.set_sftp(sftp)
    try:
        workdir = tmp_path / "board"
        t = connected(h, workdir)
        t.op_timeout_s = 3.0
        src = tmp_path / "model.onnx"
        src.write_bytes(os.urandom(6 << 20))  # ~6 s over the slowed link
        remote = f"{workdir}/cache/model.onnx"
        cut: list[float] = []

        def cut_mid_upload() -> None:
            end = time.monotonic() + 20
            while time.monotonic() < end:
                if any(p.stat().st_size > 256 << 10 for p in (workdir / "cache").glob("model.onnx.tmp-*")):
                    h.link_down()
                    cut.append(time.monotonic())
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=cut_mid_upload)
        watcher.start()
        with pytest.raises(ConnectError, match="no progress for 3 s during upload of model.onnx"):
            t.put(src, remote)
        failed = time.monotonic()
        watcher.join()
        assert cut and failed - cut[0] < 3.0 + 2.5  # the op timeout, the watchdog's poll, the close
        assert not Path(remote).exists()
        with pytest.raises(ConnectError, match="not connected"):  # dropped: nobody reuses a dead connection
            t.size(remote)
        h.link_up()
        subprocess.run(["tc", "qdisc", "del", "dev", h.veth, "root"], capture_output=True)
        t.connect()
        t.put(src, remote)
        assert sha256_file(Path(remote)) == sha256_file(src)
        t.close()
    finally:
        h.link_up()
        h.set_sftp(True)


def test_connecting_to_a_board_behind_a_dead_link_ends_within_the_op_timeout(host: LabHost, tmp_path: Path) -> None:
    """Packets to the board vanish (a link dead beyond the first hop: no error, no answer)."""
    host.link_up()  # skips, saying why, on a loopback lab
    t = SSHTransport(host.address, workdir=str(tmp_path), port=host.port, user=host.user, key_file=str(host.key),
                     known_hosts=str(host.known_hosts), ssh_config=None)
    t.op_timeout_s = 2.0  # a job's budget below the 10 s connect timeout
    blackhole = ["tc", "qdisc", "add", "dev", host.veth, "root", "tbf", "rate", "8bit", "burst", "1", "latency", "1ms"]
    if subprocess.run(blackhole, capture_output=True).returncode != 0:
        pytest.skip("cannot drop the lab's packets with tc")
    try:
        start = time.monotonic()
        with pytest.raises(ConnectError, match="within 2 s: timed out"):
            t.connect()
        assert 1.9 < time.monotonic() - start < 4
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", host.veth, "root"], capture_output=True)


def test_sftp_uploads_are_fsynced_before_their_rename(host: LabHost, tmp_path: Path) -> None:
    """fsync@openssh.com on the upload's handle; a server that refuses it gets ``sync`` over exec instead."""
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(200_000))
    t = connected(host, tmp_path / "a")
    t.put(src, f"{t.workdir}/cache/m.onnx")
    assert t._sftp_fsync  # the server took the extended request (a refusal turns it off: below)
    t.close()
    old = restart_with(host, "internal-sftp -P fsync")  # OpenSSH's own switch to deny fsync@openssh.com
    try:
        t = connected(host, tmp_path / "b")
        t.put(src, f"{t.workdir}/cache/m.onnx")
        assert not t._sftp_fsync and t.transfer == "sftp"  # refused, fell back, and the upload still landed
        assert sha256_file(tmp_path / "b" / "cache" / "m.onnx") == sha256_file(src)
        t.put(src, f"{t.workdir}/cache/n.onnx")  # and later uploads sync without asking again
        assert sha256_file(tmp_path / "b" / "cache" / "n.onnx") == sha256_file(src)
        t.close()
    finally:
        host.config.write_text(old)
        host.kill_all()
        host.proc = None
        host.start()


def test_a_cached_file_is_hashed_on_the_board_once_per_connection(host: LabHost, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(os.urandom(100_000))
    t = connected(host, tmp_path / "w")
    remote = t.put_by_hash(src)
    assert t.sha256(remote) == sha256_file(src) and t.sha256(f"{remote}.missing") is None
    data = bytearray(Path(remote).read_bytes())
    data[5] ^= 1
    Path(remote).write_bytes(bytes(data))
    assert t.put_by_hash(src) == remote and Path(remote).read_bytes() == bytes(data)  # checked already: size only
    t.connect()  # a new connection checks the content again
    sent = t.uploaded_bytes
    assert t.put_by_hash(src) == remote and Path(remote).read_bytes() == src.read_bytes()
    assert t.uploaded_bytes - sent == 100_000
    t.close()
