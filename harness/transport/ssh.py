"""A board reached over SSH (paramiko): one reused connection, SFTP for files.

Commands are argv lists joined with ``shlex.quote`` only, so names and paths with spaces
or shell metacharacters arrive intact and nothing the user wrote is ever parsed by the
remote shell. Each command's shell prints its PID first (on stderr, stripped again here);
sshd starts every session with ``setsid``, so that PID is the process-group ID and a
timeout can kill the agent *and* everything it started.

No network wait goes unbounded. paramiko's own timeouts cover reads and channel opens, not
every wait (a channel request's reply, a socket write into a full send buffer on a dead
link), so each file operation and each command's start runs under a ``_Watchdog`` that closes
the connection once the operation has made no progress for ``op_timeout_s`` (the job's budget,
at most FILE_OP_TIMEOUT_S): every blocked call then fails, the job with it, and the next job
reconnects.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import paramiko
from paramiko.sftp import CMD_EXTENDED

from harness.transport.base import FILE_OP_TIMEOUT_S, CommandResult, LineBuffer, Session, Transport
from harness.transport.ssh_hosts import (
    DEFAULT_SSH_CONFIG, AcceptNewPolicy, StrictPolicy, changed_key_error, resolve_endpoint,
)
from harness.config import Device
from harness.config.inventory import DEFAULTS
from harness.errors import AuthError, CommandTimeout, ConnectError, RemoteCommandError

log = logging.getLogger("edge_harness.transport.ssh")

__all__ = ["FILE_OP_TIMEOUT_S", "KILL_WAIT_S", "SSHTransport"]
PGID_MARK = b"__EH_PGID__ "
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# How long a kill of a timed-out command may take before we give up on the connection:
# a board whose link is down must not hold the sweep past its job timeout for long.
KILL_WAIT_S = 5.0
CHUNK = 32768  # bytes per SFTP write (paramiko's largest request)
_HEX64 = re.compile(rb"^([0-9a-f]{64})\b")


class _Watchdog:
    """Closes a paramiko connection when the operation it watches makes no progress for
    ``limit_s``. Closing the transport wakes every call blocked on it (they fail with
    EOFError, SSHException or OSError); ``fired`` tells the caller why."""

    def __init__(self, transport: paramiko.Transport | None, limit_s: float):
        self.transport = transport
        self.limit_s = limit_s
        self.last = time.monotonic()
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ssh-watchdog", daemon=True)

    def progress(self) -> None:
        self.last = time.monotonic()

    def _watch(self) -> None:
        while not self._done.wait(min(0.2, self.limit_s / 4)):
            if time.monotonic() - self.last > self.limit_s:
                self.fired = True
                if self.transport is not None:
                    self.transport.close()
                return

    def __enter__(self) -> _Watchdog:
        if self.transport is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()


class SSHTransport(Transport):
    """One device over SSH. Not thread-safe: one board's runner owns it, on that board's thread."""

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
        self._dog: _Watchdog | None = None  # the watchdog of the operation under way
        self._sftp_fsync = True  # the SFTP server offers fsync@openssh.com (until it says otherwise)
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
        """(Re)connect, expand a ``~`` workdir on the board, and create ``<workdir>/cache``; each
        step bounded by ``connect_timeout_s`` or ``op_timeout_s``, whichever is shorter."""
        self.close()
        self._verified.clear()
        e = self.endpoint
        limit = min(self.connect_timeout_s, self.op_timeout_s)
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
                allow_agent=not e.key_files, look_for_keys=not e.key_files, timeout=limit,
                banner_timeout=limit, auth_timeout=limit, channel_timeout=limit,
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
            raise ConnectError(f"cannot reach {where} within {limit:g} s: {err}") from None
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(self.keepalive_s)
        self._client = client
        with self._watch(transport) as dog:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
                assert self._sftp is not None
                self._sftp.get_channel().settimeout(self.op_timeout_s)
                self.transfer = "sftp"
            except (paramiko.SSHException, OSError, EOFError) as err:  # no SFTP subsystem (dropbear, minimal images)
                if dog.fired or not transport.is_active():
                    self.close()
                    why = f"no answer for {self.op_timeout_s:g} s" if dog.fired else f"connection lost: {err}"
                    raise ConnectError(f"{where}: after login, {why}") from None
                log.info("%s offers no SFTP (%s): files go over the exec channel", where, err)
                self._sftp, self.transfer = None, "exec"
            try:
                self.workdir = self._expand(self._requested_workdir)
                self._mkdirs(f"{self.workdir}/cache")
            except (paramiko.SSHException, OSError, EOFError, RemoteCommandError) as err:
                self.close()
                why = f"no progress for {self.op_timeout_s:g} s" if dog.fired else str(err)
                raise ConnectError(f"{where}: cannot prepare work directory {self._requested_workdir!r}: {why}") from None
        self._dog = None

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
        ``stdin`` (a file streamed in chunks, or bytes); its stdout, or RemoteCommandError.
        Callers run it under a watchdog (``_sftp_call``, ``connect``): this call only reports progress."""
        chan = self._transport().open_session(timeout=min(self.connect_timeout_s, self.op_timeout_s))
        chan.settimeout(self.op_timeout_s)
        try:
            chan.exec_command(line)
            if isinstance(stdin, Path):
                with open(stdin, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 16), b""):
                        chan.sendall(chunk)
                        self._progress()
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
        """Drop the connection. The transport goes first: closing the SFTP channel on a live
        transport would send a message, and on a dead link that write may never finish."""
        if self._client is not None:
            self._client.close()
        if self._sftp is not None:
            self._sftp.close()  # its transport is closed: nothing is sent
        self._sftp = self._client = None

    def _watch(self, transport: paramiko.Transport | None = None, limit_s: float | None = None) -> _Watchdog:
        """A watchdog over the current connection for the next operation (``with``)."""
        if transport is None and self._client is not None:
            transport = self._client.get_transport()
        dog = _Watchdog(transport, self.op_timeout_s if limit_s is None else limit_s)
        self._dog = dog
        return dog

    def _progress(self) -> None:
        if self._dog is not None:
            self._dog.progress()

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
        chan = self._exec(argv, env, min(self.op_timeout_s, timeout_s))
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

    def _exec(self, argv: list[str], env: dict[str, str] | None, limit_s: float) -> paramiko.Channel:
        """Open a session and start the command; the server's answer to either is due within ``limit_s``."""
        line = self.command_line(argv, env)
        dog = self._watch(limit_s=limit_s)
        try:
            with dog:
                chan = self._transport().open_session(timeout=min(self.connect_timeout_s, limit_s))
                chan.exec_command(line)  # waits for the server's reply without a timeout of its own
        except (paramiko.SSHException, OSError, EOFError) as err:
            self.close()
            why = f"no answer for {limit_s:g} s (link lost?)" if dog.fired else str(err)
            raise ConnectError(f"{self!r}: cannot start {argv[0]}: {why}") from None
        finally:
            self._dog = None
        return chan

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> Session:
        return _SSHSession(self, self._exec(argv, env, self.op_timeout_s), f"{argv[0]} on {self!r}")

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
        """``fn`` over SFTP, or ``exec_fn`` over the exec channel on a board without SFTP, under a
        watchdog: no progress for ``op_timeout_s`` drops the connection (ConnectError)."""
        if self._client is None:
            raise ConnectError(f"{self!r}: not connected; connect first")
        dog = self._watch()
        try:
            with dog:
                if self._sftp is None:
                    assert exec_fn is not None, what
                    return exec_fn()
                self._sftp.get_channel().settimeout(self.op_timeout_s)
                return fn(self._sftp)
        except (paramiko.SSHException, EOFError, socket.timeout) as err:
            self.close()
            raise ConnectError(self._lost(what, err, dog)) from None
        except OSError as err:
            if dog.fired or not self._alive():
                self.close()
                raise ConnectError(self._lost(what, err, dog)) from None
            raise RemoteCommandError(f"{self!r}: {what} failed: {err}") from None
        finally:
            self._dog = None

    def _alive(self) -> bool:
        t = self._client.get_transport() if self._client is not None else None
        return t is not None and t.is_active()

    def _lost(self, what: str, err: BaseException, dog: _Watchdog) -> str:
        if dog.fired or isinstance(err, socket.timeout):
            return (f"{self!r}: no progress for {dog.limit_s:g} s during {what} (link down or board not answering); "
                    "connection dropped, the next job reconnects")
        return f"{self!r}: connection lost during {what}: {err}"

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

    def sha256(self, remote: str) -> str | None:
        """Hashed on the board by ``sha256sum`` (coreutils, busybox) or ``openssl``; None when
        it has neither, or the file is not there."""
        def digest() -> str | None:
            out = self._shell(f"{{ sha256sum || openssl dgst -sha256 -r; }} < {shlex.quote(remote)} 2>/dev/null || true",
                              f"sha256 of {remote}")
            m = _HEX64.match(out.strip().lower())
            return m.group(1).decode() if m else None

        return self._sftp_call(f"sha256 of {remote}", lambda _: digest(), digest)  # type: ignore[return-value]

    def _atomic(self, remote: str, what: str, data: Path | bytes, durable: bool) -> None:
        """Write beside ``remote`` under a random name, then rename over it (POSIX rename is
        atomic); without SFTP, one shell line does the same with ``data`` on its stdin.
        ``durable``: the data reaches the board's disk before the rename (fsync@openssh.com, or
        ``sync``), so a power loss leaves the old name or the whole file, never a torn one."""
        tmp = f"{remote}.tmp-{secrets.token_hex(6)}"

        def piped() -> None:
            q, qt, qd = shlex.quote(remote), shlex.quote(tmp), shlex.quote(remote.rsplit("/", 1)[0] or "/")
            sync = f" && {{ sync {qt} 2>/dev/null || sync; }}" if durable else ""
            self._shell(f"mkdir -p -- {qd} && cat > {qt}{sync} && mv -f -- {qt} {q} || {{ rm -f -- {qt}; exit 1; }}",
                        what, data)

        def go(sftp: paramiko.SFTPClient) -> None:
            self._mkdirs(remote.rsplit("/", 1)[0] or "/")
            try:
                self._send(sftp, data, tmp, durable)
                sftp.posix_rename(tmp, remote)
            except BaseException as err:
                # Clean up only over a live link: on a dead one the removal would wait out the budget again.
                lost = isinstance(err, (socket.timeout, EOFError, paramiko.SSHException)) or not self._alive()
                if not lost and tmp.startswith(f"{self.workdir}/"):  # never delete anything outside the workdir
                    try:
                        sftp.remove(tmp)
                    except (OSError, paramiko.SSHException, EOFError):
                        pass
                raise

        self._sftp_call(what, go, piped)

    def _send(self, sftp: paramiko.SFTPClient, data: Path | bytes, tmp: str, durable: bool) -> None:
        """``data`` into ``tmp`` over SFTP (pipelined, like paramiko's ``put``), each chunk
        progress for the watchdog; fsync'd when ``durable``; its size checked after."""
        size = 0
        with open(data, "rb") if isinstance(data, Path) else io.BytesIO(data) as src, sftp.open(tmp, "wb") as f:
            f.set_pipelined(True)
            for chunk in iter(lambda: src.read(CHUNK), b""):
                f.write(chunk)
                size += len(chunk)
                self._progress()
            if durable:
                f.flush()
                self._fsync(sftp, f, tmp)
        if sftp.stat(tmp).st_size != size:
            raise OSError(f"{tmp} has {sftp.stat(tmp).st_size} bytes on the board, not the {size} sent")

    def _fsync(self, sftp: paramiko.SFTPClient, f: paramiko.SFTPFile, tmp: str) -> None:
        """OpenSSH's ``fsync@openssh.com`` on the open handle (paramiko has no call for it: the
        extended request as its own ``posix_rename`` sends one); ``sync`` over the exec channel
        on a server without the extension."""
        if self._sftp_fsync:
            try:
                sftp._request(CMD_EXTENDED, "fsync@openssh.com", f.handle)  # noqa: SLF001
                return
            except OSError as err:
                if isinstance(err, socket.timeout) or not self._alive():
                    raise
                log.info("%r: the SFTP server has no fsync@openssh.com (%s): syncing with sync", self, err)
                self._sftp_fsync = False
        self._shell(f"sync {shlex.quote(tmp)} 2>/dev/null || sync", f"sync of {tmp}")

    def put(self, local: Path, remote: str) -> None:
        self._atomic(remote, f"upload of {local.name}", local, durable=True)

    def write_text(self, remote: str, text: str) -> None:
        self._atomic(remote, f"write of {remote}", text.encode("utf-8"), durable=False)


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
