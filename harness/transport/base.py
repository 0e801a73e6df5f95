"""The transport interface: how the coordinator reaches a device.

Every transport runs argv lists (never shell strings built by concatenation), streams
stdout line by line, and puts files by content hash under the device's work directory
so an artifact already there is never sent twice.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.config import Device
from harness.errors import CommandTimeout, ConnectError
from harness.hashing import sha256_file

log = logging.getLogger("edge_harness.transport")

# The longest one network wait of a file operation (or a command's start) may go without
# progress: a cut cable would otherwise block it until TCP gives up (~15 min). A job lowers it
# to its own budget (``Transport.op_timeout_s``: measure.timeout_s + faults.grace_s).
FILE_OP_TIMEOUT_S = 60.0

@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float


@dataclass(frozen=True)
class Exchange:
    """What a session answered to one request."""

    lines: list[str]  # stdout lines, up to and including the one that ended the read
    stderr: str  # what the session wrote to stderr meanwhile
    duration_s: float


# Bounds on what a device may send, so a board that prints without end cannot fill the
# coordinator's memory: one line (a result carries every sample, ~12 bytes each: 10 M samples
# fit), and the stderr kept (its tail: the end says why a command failed).
MAX_LINE_BYTES = 128 << 20
MAX_STDERR_BYTES = 1 << 20
MAX_ANSWER_CHARS = 2 * MAX_LINE_BYTES  # the stdout kept for one request


class LineBuffer:
    """Split a byte stream into lines as it arrives; decode per line so no character splits.
    A line longer than MAX_LINE_BYTES is dropped whole (``dropped`` counts them): no reader
    could use it, and keeping it would let a board exhaust memory."""

    def __init__(self, on_line: Callable[[str], None] | None = None):
        self.on_line = on_line
        self.pending = b""
        self.lines: list[str] = []
        self.dropped = 0
        self._skipping = False  # inside an oversized line: drop up to its newline

    def feed(self, data: bytes) -> None:
        *complete, pending = (self.pending + data).split(b"\n")
        for raw in complete:
            if self._skipping or len(raw) > MAX_LINE_BYTES:  # the tail of an oversized line, or one that came whole
                self.dropped += not self._skipping
                self._skipping = False
                continue
            self._emit(raw.decode("utf-8", "replace") + "\n")
        if len(pending) > MAX_LINE_BYTES:
            self.dropped += not self._skipping
            self._skipping, pending = True, b""
        self.pending = pending

    def flush(self) -> None:
        if self.pending:
            self._emit(self.pending.decode("utf-8", "replace"))
            self.pending = b""

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line is not None:
            self.on_line(line.rstrip("\n"))

    def text(self) -> str:
        return "".join(self.lines)


# How long an answer's stderr may trail its stdout (see Session.read_until).
STDERR_WAIT_S = 1.0


class Session(ABC):
    """A long-lived command on the device: requests in on its stdin, answers out on stdout.

    One command serves many jobs (the agent's ``serve``), so a job costs neither a new SSH
    session nor a new interpreter. A timeout kills the session's whole process group.
    """

    def __init__(self, what: str):
        self.what = what
        self.ended = False
        self._out = LineBuffer()
        self._err = bytearray()

    @abstractmethod
    def send_line(self, text: str) -> None: ...

    @abstractmethod
    def _poll(self, wait_s: float) -> tuple[bytes, bytes, bool]:
        """Wait up to ``wait_s`` for output: (stdout, stderr, the command has ended and all is read)."""

    @abstractmethod
    def _kill(self) -> bool:
        """Kill the command's process group; False when the device could not be told."""

    @abstractmethod
    def close(self) -> None: ...

    def read_until(self, done: Callable[[str], bool], timeout_s: float, stderr_end: bytes | None = None,
                   heartbeat: tuple[float, Callable[[], None]] | None = None,
                   restart: Callable[[str], float | None] | None = None) -> Exchange:
        """Stdout lines up to the first for which ``done`` is true.

        stdout and stderr travel apart (sshd forwards each pipe as it reads it), so an answer's
        stderr may still be on its way when its last stdout line arrives: with ``stderr_end``,
        the server's marker line closing each answer's stderr, the read also waits (up to
        STDERR_WAIT_S) for that marker, and the stderr returned stops there.
        ``heartbeat`` (interval_s, send): ``send()`` is called every interval while the read
        waits, so the server knows its requester lives (the board's lease; the loop polls at
        least every 0.1 s, so no thread is needed). ``restart(line)``: a new timeout (s) restarts
        the clock from that line (the board said it is waiting for its lease, or a job that
        waited got the board and gets its full time); None leaves the clock as it is.
        Raises ``CommandTimeout`` (the process group killed, the session closed) or
        ``ConnectError`` when the command or the connection ended first.
        """
        start = time.monotonic()
        deadline = start + timeout_s
        beat = start + heartbeat[0] if heartbeat else float("inf")
        taken: list[str] = []
        kept = 0  # characters in ``taken``: past MAX_ANSWER_CHARS only the lines that end or restart the read stay
        answered: float | None = None
        while True:
            while answered is None and self._out.lines:
                line = self._out.lines.pop(0)
                new = restart(line) if restart is not None else None
                starts = new is not None
                if new is not None:
                    timeout_s = new
                    deadline = time.monotonic() + timeout_s
                if done(line):
                    answered = time.monotonic()
                if kept + len(line) <= MAX_ANSWER_CHARS or starts or answered is not None:
                    taken.append(line)
                    kept += len(line)
            if answered is not None:
                cut = -1 if stderr_end is None else self._err.find(stderr_end)
                if stderr_end is None or cut >= 0 or self.ended or time.monotonic() - answered > STDERR_WAIT_S:
                    err, self._err = (self._err, bytearray()) if cut < 0 else (
                        self._err[:cut], self._err[cut + len(stderr_end):].lstrip(b"\n"))
                    return Exchange(taken, err.decode("utf-8", "replace"), time.monotonic() - start)
            elif self.ended:
                self.close()
                tail = self._err.decode("utf-8", "replace").strip()[-500:]
                raise ConnectError(f"{self.what} ended before answering" + (f": {tail}" if tail else ""))
            now = time.monotonic()
            if now >= deadline and answered is None:
                killed = self._kill()
                self.close()
                raise CommandTimeout(f"{self.what} timed out after {timeout_s:g} s " + (
                    "(process group killed)" if killed else "(the device did not answer the kill)"))
            if heartbeat is not None and answered is None and now >= beat:
                heartbeat[1]()
                beat = now + heartbeat[0]
            out, err, self.ended = self._poll(max(0.0, min(0.1, deadline - now, beat - now)))
            self._out.feed(out)
            self._err += err
            if len(self._err) > 2 * MAX_STDERR_BYTES:  # keep the tail (the marker and the reason are there)
                del self._err[:-MAX_STDERR_BYTES]


class Transport(ABC):
    """One device's connection. Not thread-safe: one board's runner owns it, and uses it only
    from that board's thread of its site actor (harness/coordinator/site.py)."""

    name: str

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.uploaded_bytes = 0  # by put_by_hash since this transport was made: what the cache did not save
        # No network wait goes longer than this without progress (the runner sets each job's budget).
        self.op_timeout_s = FILE_OP_TIMEOUT_S
        self._verified: set[str] = set()  # cached files whose sha256 was checked on this connection

    @classmethod
    @abstractmethod
    def for_device(cls, device: Device, driver_env: dict[str, str]) -> Transport:
        """The transport to an inventory device, built only (no network)."""

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def run(
        self,
        argv: list[str],
        timeout_s: float,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run argv on the device; ``on_line`` sees each stdout line as it arrives.

        Raises ``CommandTimeout`` after killing the whole remote process group.
        """

    @abstractmethod
    def start(self, argv: list[str], env: dict[str, str] | None = None) -> Session:
        """Start a long-lived command whose stdin stays open for requests."""

    @abstractmethod
    def size(self, remote: str) -> int | None:
        """The remote file's size in bytes; None when there is none."""

    def sha256(self, remote: str) -> str | None:
        """The remote file's sha256 (hex), computed on the device; None when it cannot tell."""
        return None

    @abstractmethod
    def put(self, local: Path, remote: str) -> None:
        """Copy a file; the remote path appears atomically (temp name, then rename)."""

    @abstractmethod
    def write_text(self, remote: str, text: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def cache_path(self, digest: str, suffix: str = "") -> str:
        return f"{self.workdir}/cache/{digest}{suffix}"

    def put_by_hash(self, local: Path, digest: str | None = None) -> str:
        """Send ``local`` to ``<workdir>/cache/<sha256><suffix>`` unless it is there already,
        whole and intact: a cached copy of another size (truncated by a power loss on the
        board) is sent again, and so is one whose sha256, checked on the board once per
        connection, is not its name's (same-size damage). The size is checked every time (one
        stat), the content once per connection (it costs a read of the file on the board)."""
        digest = digest or sha256_file(local)
        remote = self.cache_path(digest, local.suffix)
        size = local.stat().st_size
        there = self.size(remote)
        if there == size:
            if remote in self._verified:
                return remote
            found = self.sha256(remote)
            if found is None or found == digest:  # None: the board cannot hash it; the agent checks artifacts
                self._verified.add(remote)
                return remote
            log.warning("%r: the cached %s is damaged (sha256 %s): sending it again", self, remote, found)
        elif there is not None:
            log.warning("%r: the cached %s has %d of its %d bytes: sending it again", self, remote, there, size)
        self.put(local, remote)
        self.uploaded_bytes += size
        self._verified.add(remote)
        return remote
