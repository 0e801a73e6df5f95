"""A board reached over SSH (paramiko): one reused connection, SFTP for files.

Commands are argv lists joined with ``shlex.quote`` only, so names and paths with spaces
or shell metacharacters arrive intact and nothing the user wrote is ever parsed by the
remote shell. Each command's shell prints its PID first (on stderr, stripped again here);
sshd starts every session with ``setsid``, so that PID is the process-group ID and a
timeout can kill the agent *and* everything it started.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import select
import shlex
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import paramiko

from harness.transport.base import CommandResult, LineBuffer, Session, Transport
from harness.transport.ssh_hosts import (
    DEFAULT_SSH_CONFIG, AcceptNewPolicy, StrictPolicy, changed_key_error, resolve_endpoint,
)
from harness.config import Device
from harness.config.inventory import DEFAULTS
from harness.errors import AuthError, CommandTimeout, ConnectError, RemoteCommandError

log = logging.getLogger("edge_harness.transport.ssh")

# A file operation (SFTP or piped) that makes no progress for this long has lost its link: a cut
# cable would otherwise block an upload until TCP gives up (~15 min), outside any job's budget.
FILE_OP_TIMEOUT_S = 60.0
PGID_MARK = b"__EH_PGID__ "
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# How long a kill of a timed-out command may take before we give up on the connection:
# a board whose link is down must not hold the sweep past its job timeout for long.
KILL_WAIT_S = 5.0


class SSHTransport(Transport):
    """One device over SSH. Not thread-safe: a device actor owns exactly one."""

    name = "ssh"

    def __init__(self, host: str, *, workdir: str, port: int | None = None, user: str | None = None,
                 key_file: str | None = None, known_hosts: str = "~/.ssh/known_hosts",
                 host_key_policy: Literal["strict", "accept-new"] = "strict", connect_timeout_s: float = 10.0,
                 keepalive_s: int = 15, ssh_config: str | None = DEFAULT_SSH_CONFIG):
        """No network here: the coordinator builds transports up front only to validate devices."""
        super().__init__(workdir)
        if host_key_policy not in ("strict", "accept-new"):
            raise ValueError(f"host_key_policy must be 'strict' or 'accept-new', not {host_key_policy!r}")
        self.endpoint = resolve_endpoint(host, port, user, key_file, ssh_config)
        self.known_hosts = Path(known_hosts).expanduser()
        self.host_key_policy = host_key_policy
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self._requested_workdir = workdir
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self.transfer = ""  # how files reach the board: "sftp", or "exec" (piped over a command) without SFTP

    def __repr__(self) -> str:
        e = self.endpoint
        return f"SSHTransport({e.user}@{e.hostname}:{e.port})"

    # -- connection -----------------------------------------------------------------------

    @classmethod
    def for_device(cls, device: Device, driver_env: dict[str, str]) -> SSHTransport:
        """The built-in default port 22 is passed as "unset" so a ``~/.ssh/config`` alias's
        ``Port`` still applies; an explicit inventory port always wins."""
        assert device.host is not None  # the inventory model requires it for non-local kinds
        return cls(
            device.host, workdir=device.workdir or DEFAULTS["workdir"],
            port=None if device.port in (None, DEFAULTS["port"]) else device.port, user=device.user,
            key_file=os.path.expanduser(device.key) if device.key else None,
            known_hosts=os.path.expanduser(device.known_hosts or DEFAULTS["known_hosts"]),
            host_key_policy=device.host_key_policy or "strict",
        )  # fmt: skip

    def connect(self) -> None:
        """(Re)connect, expand a ``~`` workdir on the board, and create ``<workdir>/cache``."""
        self.close()
        e = self.endpoint
        client = paramiko.SSHClient()
        if self.known_hosts.is_file():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(
            AcceptNewPolicy(self.known_hosts) if self.host_key_policy == "accept-new"
            else StrictPolicy(self.known_hosts, e.port))
        where = f"{e.user}@{e.hostname}:{e.port}"
        try:
            client.connect(
                e.hostname, port=e.port, username=e.user, key_filename=list(e.key_files) or None,
                allow_agent=not e.key_files, look_for_keys=not e.key_files, timeout=self.connect_timeout_s,
                banner_timeout=self.connect_timeout_s, auth_timeout=self.connect_timeout_s,
                channel_timeout=self.connect_timeout_s,
            )  # fmt: skip
        except paramiko.BadHostKeyException as err:
            client.close()
            raise changed_key_error(err, self.known_hosts, e.hostname, e.port) from None
        except AuthError:
            client.close()
            raise
        except paramiko.AuthenticationException as err:
            client.close()
            keys = ", ".join(e.key_files) or "ssh-agent and default keys"
            raise AuthError(f"{where}: authentication failed with {keys} ({err}); check the device's 'key' "
                            "and that its public key is in the board's authorized_keys") from None
        except (paramiko.SSHException, OSError, EOFError) as err:
            client.close()
            raise ConnectError(f"cannot reach {where} within {self.connect_timeout_s:g} s: {err}") from None
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(self.keepalive_s)
        self._client = client
        try:
            self._sftp = client.open_sftp()
            self._sftp.get_channel().settimeout(FILE_OP_TIMEOUT_S)
            self.transfer = "sftp"
        except (paramiko.SSHException, OSError, EOFError) as err:  # no SFTP subsystem (dropbear, minimal images)
            log.info("%s offers no SFTP (%s): files go over the exec channel", where, err)
            self._sftp, self.transfer = None, "exec"
        try:
            self.workdir = self._expand(self._requested_workdir)
            self._mkdirs(f"{self.workdir}/cache")
        except (paramiko.SSHException, OSError, EOFError, RemoteCommandError) as err:
            self.close()
            raise ConnectError(f"{where}: cannot prepare work directory {self._requested_workdir!r}: {err}") from None

    def _expand(self, workdir: str) -> str:
        """``~`` means the login user's home *on the board*: SFTP's ``.``, or the shell's $HOME."""
        if workdir.startswith("~") and not (workdir == "~" or workdir.startswith("~/")):
            raise ConnectError(f"workdir {workdir!r}: only '~' or '~/...' is supported, not another user's home")
        if not workdir.startswith("~"):
            return workdir.rstrip("/") or "/"
        if self._sftp is not None:
            home = self._sftp.normalize(".")
        else:
            home = self._shell("printf %s \"$HOME\"", "the home directory").decode("utf-8", "replace")
        return home.rstrip("/") + workdir[1:]

    def _shell(self, line: str, what: str, stdin: Path | bytes | None = None) -> bytes:
        """Run a shell line on the board (the exec channel, for boards without SFTP), feeding
        ``stdin`` (a file streamed in chunks, or bytes); its stdout, or RemoteCommandError."""
        chan = self._transport().open_session(timeout=self.connect_timeout_s)
        chan.settimeout(FILE_OP_TIMEOUT_S)
        try:
            chan.exec_command(line)
            if isinstance(stdin, Path):
                with open(stdin, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 16), b""):
                        chan.sendall(chunk)
            elif stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = chan.makefile("rb").read(), chan.makefile_stderr("rb").read()
            status = chan.recv_exit_status()
        finally:
            chan.close()
        if status != 0:
            raise RemoteCommandError(f"{self!r}: {what} failed ({status}): {err.decode('utf-8', 'replace').strip()[-300:]}")
        return out

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()
        self._sftp = self._client = None

    def _transport(self) -> paramiko.Transport:
        t = self._client.get_transport() if self._client is not None else None
        if t is None or not t.is_active():
            raise ConnectError(f"{self!r}: not connected (connection lost); connect again")
        return t

    # -- commands -------------------------------------------------------------------------

    def command_line(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        """The one shell line sent to the board: every piece of user data goes through shlex.quote."""
        if not argv:
            raise ValueError("empty argv")
        parts = [f"cd -- {shlex.quote(self.workdir)}", f'echo "{PGID_MARK.decode()}$$" >&2']
        for k, v in (env or {}).items():
            if not _ENV_NAME.match(k):
                raise ValueError(f"invalid environment variable name {k!r}")
            parts.append(f"export {k}={shlex.quote(v)}")
        parts.append("exec " + " ".join(shlex.quote(a) for a in argv))
        return " && ".join(parts)

    def run(
        self,
        argv: list[str],
        timeout_s: float,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        start = time.monotonic()
        chan = self._exec(argv, env)
        try:
            chan.shutdown_write()  # no stdin: a command that reads it sees EOF instead of hanging
        except (paramiko.SSHException, OSError, EOFError) as err:
            self.close()
            raise ConnectError(f"{self!r}: cannot start {argv[0]}: {err}") from None
        out = LineBuffer(on_line)
        err_buf = bytearray()
        pgid: int | None = None
        deadline = start + timeout_s
        try:
            while True:
                got = False
                while chan.recv_ready():
                    out.feed(chan.recv(65536))
                    got = True
                while chan.recv_stderr_ready():
                    err_buf += chan.recv_stderr(65536)
                    got = True
                if pgid is None:
                    pgid = _take_pgid(err_buf)
                drained = not (chan.recv_ready() or chan.recv_stderr_ready())
                if chan.exit_status_ready() and chan.eof_received and drained:
                    break
                # paramiko marks a channel "exited" (status -1) when the connection dies too;
                # only a server that closed the command's output really finished it.
                if (chan.closed or not chan.get_transport().is_active()) and not chan.eof_received:
                    self.close()
                    raise ConnectError(f"{self!r}: connection lost while running {argv[0]}")
                if time.monotonic() >= deadline:
                    killed = self._kill_group(pgid)
                    raise CommandTimeout(f"{argv[0]} on {self!r} timed out after {timeout_s:g} s " + (
                        f"(remote process group {pgid} killed)" if killed else
                        "(the board did not answer the kill; connection dropped, it reconnects on the next job)"))
                if not got:
                    wait = min(0.1, max(0.0, deadline - time.monotonic()))
                    if chan.eof_received:  # the output is over; the exit status does not wake select
                        chan.status_event.wait(wait)
                    else:
                        select.select([chan], [], [], wait)
        finally:
            chan.close()
        status = chan.recv_exit_status()
        if status == -1 and not (chan.get_transport() and chan.get_transport().is_active()):
            self.close()  # no exit status and no connection: the board went away mid-command
            raise ConnectError(f"{self!r}: connection lost while running {argv[0]}")
        out.flush()
        stderr = bytes(err_buf)
        if pgid is None and stderr.startswith(PGID_MARK):  # the mark without its newline: never split
            stderr = b""
        return CommandResult(status, out.text(), stderr.decode("utf-8", "replace"),
                             time.monotonic() - start)

    def _exec(self, argv: list[str], env: dict[str, str] | None) -> paramiko.Channel:
        line = self.command_line(argv, env)
        try:
            chan = self._transport().open_session(timeout=self.connect_timeout_s)
            chan.exec_command(line)
        except (paramiko.SSHException, OSError, EOFError) as err:
            self.close()
            raise ConnectError(f"{self!r}: cannot start {argv[0]}: {err}") from None
        return chan

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> Session:
        return _SSHSession(self, self._exec(argv, env), f"{argv[0]} on {self!r}")

    def _kill_group(self, pgid: int | None) -> bool:
        """SIGKILL the command's whole process group through a second channel.

        If the board cannot be reached for that (link down), drop the connection so the
        next job reconnects instead of reusing a dead one.
        """
        if pgid is None:
            self.close()  # the command never reported its group: nothing safe to kill by number
            return False
        try:
            kill = self._transport().open_session(timeout=KILL_WAIT_S)
            kill.exec_command(f"kill -KILL -- -{int(pgid)}")
            end = time.monotonic() + KILL_WAIT_S
            while not kill.exit_status_ready() and time.monotonic() < end:
                time.sleep(0.02)
            if not kill.exit_status_ready():
                raise paramiko.SSHException("kill did not finish")
            kill.close()
        except (paramiko.SSHException, OSError, EOFError, ConnectError) as err:
            log.warning("%r: could not kill remote process group %s: %s", self, pgid, err)
            self.close()
            return False
        return True

    # -- files ----------------------------------------------------------------------------

    def _sftp_call(self, what: str, fn: Callable[[paramiko.SFTPClient], object],
                   exec_fn: Callable[[], object] | None = None) -> object:
        """``fn`` over SFTP, or ``exec_fn`` over the exec channel on a board without SFTP."""
        if self._client is None:
            raise ConnectError(f"{self!r}: not connected; connect first")
        try:
            if self._sftp is None:
                assert exec_fn is not None, what
                return exec_fn()
            return fn(self._sftp)
        except (paramiko.SSHException, EOFError, socket.timeout) as err:
            self.close()
            raise ConnectError(f"{self!r}: connection lost during {what}: {err}") from None
        except OSError as err:
            if self._client is None or not self._client.get_transport() or not self._client.get_transport().is_active():
                self.close()
                raise ConnectError(f"{self!r}: connection lost during {what}: {err}") from None
            raise RemoteCommandError(f"{self!r}: {what} failed: {err}") from None

    def _mkdirs(self, path: str) -> None:
        if self._sftp is None:
            self._shell(f"mkdir -p -- {shlex.quote(path)}", f"mkdir {path}")
            return
        sftp = self._sftp
        prefix = ""
        for part in path.split("/"):
            prefix = f"{prefix}/{part}" if prefix or not path.startswith("/") else f"/{part}"
            if not part:
                continue
            try:
                sftp.stat(prefix)
            except FileNotFoundError:
                try:
                    sftp.mkdir(prefix)
                except OSError:
                    # Another connection (a second board on the same filesystem, a second
                    # coordinator) may have made it between our stat and mkdir.
                    sftp.stat(prefix)

    def size(self, remote: str) -> int | None:
        def stat(sftp: paramiko.SFTPClient) -> int | None:
            try:
                return sftp.stat(remote).st_size
            except FileNotFoundError:
                return None

        def wc() -> int | None:
            out = self._shell(f"if test -f {shlex.quote(remote)}; then wc -c < {shlex.quote(remote)}; fi",
                              f"stat {remote}").strip()
            return int(out) if out.isdigit() else None

        return self._sftp_call(f"stat {remote}", stat, wc)  # type: ignore[return-value]

    def _atomic(self, remote: str, what: str, send: Callable[[paramiko.SFTPClient, str], object],
                data: Path | bytes) -> None:
        """Write beside ``remote`` under a random name, then rename over it (POSIX rename is atomic);
        without SFTP, one shell line does the same with ``data`` on its stdin."""
        tmp = f"{remote}.tmp-{secrets.token_hex(6)}"

        def piped() -> None:
            q, qt, qd = shlex.quote(remote), shlex.quote(tmp), shlex.quote(remote.rsplit("/", 1)[0] or "/")
            self._shell(f"mkdir -p -- {qd} && cat > {qt} && {{ sync {qt} 2>/dev/null || sync; }} && mv -f -- {qt} {q} "
                        f"|| {{ rm -f -- {qt}; exit 1; }}", what, data)

        def go(sftp: paramiko.SFTPClient) -> None:
            self._mkdirs(remote.rsplit("/", 1)[0] or "/")
            try:
                send(sftp, tmp)
                sftp.posix_rename(tmp, remote)
            except BaseException:
                if tmp.startswith(f"{self.workdir}/"):  # never delete anything outside the workdir
                    try:
                        sftp.remove(tmp)
                    except (OSError, paramiko.SSHException, EOFError):
                        pass
                raise

        self._sftp_call(what, go, piped)

    def put(self, local: Path, remote: str) -> None:
        self._atomic(remote, f"upload of {local.name}", lambda sftp, tmp: sftp.put(str(local), tmp), local)

    def write_text(self, remote: str, text: str) -> None:
        def send(sftp: paramiko.SFTPClient, tmp: str) -> None:
            with sftp.open(tmp, "w") as f:
                f.write(text.encode("utf-8"))

        self._atomic(remote, f"write of {remote}", send, text.encode("utf-8"))


class _SSHSession(Session):
    def __init__(self, transport: SSHTransport, chan: paramiko.Channel, what: str):
        super().__init__(what)
        self.transport = transport
        self.chan = chan
        self.pgid: int | None = None

    def send_line(self, text: str) -> None:
        try:
            self.chan.sendall((text + "\n").encode("utf-8"))
        except (paramiko.SSHException, OSError, EOFError) as err:
            self.transport.close()
            raise ConnectError(f"{self.what}: connection lost: {err}") from None

    def _poll(self, wait_s: float) -> tuple[bytes, bytes, bool]:
        chan = self.chan
        out, err = bytearray(), bytearray()
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if self.pgid is None:
            self._err += err
            self.pgid = _take_pgid(self._err)
            err = bytearray()
        if chan.eof_received and not (chan.recv_ready() or chan.recv_stderr_ready()):
            return bytes(out), bytes(err), True
        if chan.closed or not chan.get_transport().is_active():
            self.transport.close()
            raise ConnectError(f"{self.what}: connection lost")
        if not (out or err):
            select.select([chan], [], [], wait_s)
        return bytes(out), bytes(err), False

    def _kill(self) -> bool:
        return self.transport._kill_group(self.pgid)

    def close(self) -> None:
        try:
            self.chan.close()
        except (paramiko.SSHException, OSError, EOFError):
            pass  # the connection is gone already, and the server with it


def _take_pgid(buf: bytearray) -> int | None:
    """Remove the shell's ``__EH_PGID__ <pid>`` line from the head of stderr and return the pid."""
    if not buf.startswith(PGID_MARK) or b"\n" not in buf:
        return None
    head, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    try:
        return int(head[len(PGID_MARK):])
    except ValueError:
        return None
