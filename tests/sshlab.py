"""A lab of real OpenSSH servers for the SSH transport and fleet tests (used by conftest).

Each simulated board is Debian's ``/usr/sbin/sshd`` with its own generated host key and
client key. As root, each runs in its own network namespace behind a veth pair with a
private address, so a fault can be real: take the link down, SIGKILL the server. Where
namespaces cannot be made, servers listen on 127.0.0.1 ports and link faults are skipped.
The hosts share this machine's /tmp, so each sets its board's own lease directory
(``EDGE_HARNESS_LEASE_DIR``, devices/agent/lease.py) in its sessions' environment.
Traffic only ever goes to loopback or to the namespaces made here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def _sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30)


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   capture_output=True, timeout=30)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wait_gone(pid: int, within_s: float = 5.0) -> bool:
    """True once process ``pid`` no longer exists (polled), False if it outlives ``within_s``."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def wait_banner(address: str, port: int, deadline_s: float = 15.0) -> None:
    """Poll until the server speaks SSH (no fixed sleep: ready means ready)."""
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            with socket.create_connection((address, port), timeout=1.0) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"sshd at {address}:{port} gave no SSH banner within {deadline_s} s ({last})")


@dataclass
class LabHost:
    """One simulated board: where it listens, how to log in, and its fault switches."""

    name: str
    address: str
    port: int
    dir: Path
    known_hosts: Path
    netns: str | None = None
    veth: str | None = None
    user: str = "root"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def key(self) -> Path:
        return self.dir / "client_key"

    @property
    def host_key_pub(self) -> Path:
        return self.dir / "host_key.pub"

    @property
    def config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def lease_dir(self) -> Path:
        """Where this board keeps its lease (whatever work directory an inventory gives it)."""
        return self.dir / "lease"

    def inventory_entry(self, name: str, workdir: Path, **extra: object) -> dict[str, object]:
        """This board as an inventory device (kind generic) reached with the lab's key and
        known_hosts, running the agent with this interpreter."""
        return {"name": name, "kind": "generic", "host": self.address, "port": self.port, "user": self.user,
                "key": str(self.key), "known_hosts": str(self.known_hosts), "python": sys.executable,
                "workdir": str(workdir), **extra}

    def known_hosts_line(self) -> str:
        kind, b64 = self.host_key_pub.read_text().split()[:2]
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{name} {kind} {b64}\n"

    def start(self) -> None:
        """Start sshd (again) and wait for its banner; a no-op while it runs."""
        if self.proc is not None and self.proc.poll() is None:
            return
        cmd = [SSHD, "-D", "-e", "-f", str(self.config)]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        with open(self.dir / "sshd.log", "ab") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_banner(self.address, self.port)

    def set_sftp(self, enabled: bool) -> None:
        """Offer the SFTP subsystem or not (dropbear and minimal images have none); restarts sshd."""
        line = "Subsystem sftp internal-sftp\n"
        if (line in self.config.read_text()) == enabled:
            return
        text = self.config.read_text().replace(line, "")
        self.config.write_text(text + (line if enabled else ""))
        self.kill_all()
        self.proc = None
        self.start()

    def kill(self) -> None:
        """SIGKILL only the listener: live sessions survive, new connections are refused."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def kill_all(self) -> None:
        """SIGKILL this host's sshd and every session it serves (sshd first, then commands).

        Killing the listener alone leaves per-connection sshd processes, and with them the
        client's live sessions, running; a crashed board drops them all.
        """
        if self.proc is None:
            return
        pids = _tree(self.proc.pid)
        for pid in sorted(pids, key=lambda p: _comm(p) != "sshd"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def link_down(self) -> None:
        self._link("down")

    def link_up(self) -> None:
        self._link("up")

    def _link(self, state: str) -> None:
        if self.veth is None:
            import pytest

            pytest.skip("loopback SSH lab (no network namespaces here): no link to take down")
        _sh("ip", "link", "set", self.veth, state)


class SSHLab:
    """Factory of lab hosts: ``lab(3)`` returns three running hosts, starting them as needed."""

    def __init__(self, root: Path):
        self.root = root
        self.known_hosts = root / "known_hosts"
        self.hosts: list[LabHost] = []
        self.tag = f"{os.getpid() % 100000}"
        # EH_SSH_LAB=loopback forces the fallback (to test it where namespaces do work).
        want_netns = os.environ.get("EH_SSH_LAB", "netns") != "loopback"
        self.mode = "netns" if want_netns and os.geteuid() == 0 and shutil.which("ip") and self._probe_netns() \
            else "loopback"
        self.octet = self._free_octet() if self.mode == "netns" else 0
        print(f"\nSSH lab mode: {self.mode}")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir

    def _probe_netns(self) -> bool:
        probe = f"eh{self.tag}p"
        ok = _sh("ip", "netns", "add", probe).returncode == 0
        _sh("ip", "netns", "del", probe)
        return ok

    @staticmethod
    def _free_octet() -> int:
        """A 10.X.0.0/16 no interface here uses (another lab may run at the same time)."""
        used = _sh("ip", "-o", "-4", "addr").stdout
        for x in range(231, 255):
            if f" 10.{x}." not in used:
                return x
        raise RuntimeError("no free 10.x.0.0/16 for the SSH lab")

    def __call__(self, n: int) -> list[LabHost]:
        while len(self.hosts) < n:
            self.hosts.append(self._make(len(self.hosts) + 1))
        for h in self.hosts[:n]:
            h.start()
        return self.hosts[:n]

    def _make(self, i: int) -> LabHost:
        d = self.root / f"host{i}"
        d.mkdir(parents=True)
        _keygen(d / "host_key", f"lab-host-{i}")
        _keygen(d / "client_key", f"lab-client-{i}")
        shutil.copy(d / "client_key.pub", d / "authorized_keys")
        if self.mode == "netns":
            ns, veth, peer = f"eh{self.tag}-{i}", f"eh{self.tag}h{i}", f"eh{self.tag}n{i}"
            base = f"10.{self.octet}.{i}"
            for cmd in (["ip", "netns", "add", ns],
                        ["ip", "link", "add", veth, "type", "veth", "peer", "name", peer],
                        ["ip", "link", "set", peer, "netns", ns],
                        ["ip", "addr", "add", f"{base}.1/30", "dev", veth],
                        ["ip", "link", "set", veth, "up"],
                        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{base}.2/30", "dev", peer],
                        ["ip", "netns", "exec", ns, "ip", "link", "set", peer, "up"],
                        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]):  # fmt: skip
                res = _sh(*cmd)
                if res.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
            host = LabHost(f"lab{i}", f"{base}.2", 22, d, self.known_hosts, netns=ns, veth=veth)
        else:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            host = LabHost(f"lab{i}", "127.0.0.1", port, d, self.known_hosts)
        host.config.write_text(
            f"ListenAddress {host.address}\nPort {host.port}\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\nMaxStartups 200\nMaxSessions 100\n"
            f"PrintMotd no\nX11Forwarding no\nAllowTcpForwarding no\nSetEnv EDGE_HARNESS_LEASE_DIR={host.lease_dir}\n"
        )
        with open(self.known_hosts, "a") as f:
            f.write(host.known_hosts_line())
        return host

    def close(self) -> None:
        """Kill every server and delete every namespace, whatever the tests did."""
        for h in self.hosts:
            try:
                if h.veth:
                    h.link_up()
                h.kill_all()
            except Exception as e:  # noqa: BLE001 - teardown must reach every host
                print(f"SSH lab teardown: {h.name}: {e}")
            if h.netns:
                _sh("ip", "netns", "del", h.netns)
