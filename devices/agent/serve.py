"""``serve``: a warm agent that forks a fresh process for every job, under the board's lease.

Starting Python and importing numpy costs a board ~0.1-0.3 s of CPU, and each SSH command
another sshd session; a sweep of short jobs over many boards would spend more time there
than measuring. ``serve`` is started once per board and connection and reads one request
per stdin line:

- a bare spec path: run that job (no lease; the form of older coordinators and of batches);
- ``{"cmd": "job", "spec": PATH, "lease": {"owner", "host", "pid", "ttl_s", "wait_s", "job_id"}}``:
  wait up to ``wait_s`` for the board's lease (lease.py, in ``board_dir()`` unless ``dir``), then run the job
  holding it; ``{"event": "lease", "state": "waiting" | "granted" | "taken_over"}`` say how
  that went, an ``error`` event of kind ``BoardBusy`` that the wait gave up;
- ``{"cmd": "renew"}``: the coordinator's heartbeat, extending the running job's lease.

A job runs in a forked child, exactly what ``measure`` runs (own process, own memory
high-water mark, own watchdog, runtime imported after the fork), writing its events to the
shared stdout. After each job request the server writes ``{"event": "exit", "code": N}``, so
the coordinator knows where one job's events end, and ``STDERR_END`` on stderr, where the
job's log lines end.

A leased job lives only as long as its coordinator's session: a child whose lease was not
renewed for 0.75 ttl_s is killed (so by the time the lease expires, nobody of ours measures),
and so is one running when stdin ends (the coordinator closed the session or died). The
server is a small state machine fed by one queue (stdin lines and their end from a reader
thread, each child's exit status from a waiter thread), so it takes heartbeats while a
child runs and while a job waits for a board another coordinator holds. ``--workdir``: at start
and after each job the server tidies that directory (tidy.py) and undoes a dead job's power mode.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import sys
import threading
import time
from typing import IO, Any, Callable, Deque, Dict, Optional, Tuple

from . import PROTOCOL, lease, power
from .tidy import tidy
from .errors import BoardBusy
from .request import JobRequest, parse_request

STDERR_END = "__EH_JOB_STDERR_END__"
RETRY_S = 0.5  # how often a waiting job tries the lease again
RENEW_SHARE = 0.75  # a leased child not renewed for this share of ttl_s is killed
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_code(status: int) -> int:
    """``os.waitstatus_to_exitcode`` (Python 3.9+), for the boards' Python 3.8."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Server:
    """The state machine: at most one job waiting or running, later requests queued."""

    def __init__(self, stdin: IO[str], emit: Callable[[dict], None], run_child: Callable[[str], int],
                 workdir: Optional[str] = None):
        self.stdin, self.workdir = stdin, workdir
        self.emit, self.run_child = emit, run_child
        self.inbox: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        self.pending: Deque[JobRequest] = collections.deque()
        self.job: Optional[JobRequest] = None
        self.eof = False

    def run(self) -> int:
        self.emit({"event": "ready", "protocol": PROTOCOL, "pid": os.getpid()})
        self._tidy()
        threading.Thread(target=self._read, daemon=True).start()
        while True:
            if self.job is None and self.pending:
                self._start(self.pending.popleft())
                continue
            if self.job is None and self.eof:
                return 0
            try:
                kind, value = self.inbox.get(timeout=self._wake_in(time.monotonic()))
            except queue.Empty:
                pass
            else:
                getattr(self, "_on_" + kind)(value)
            self._tick(time.monotonic())

    # -- inputs ---------------------------------------------------------------------------

    def _read(self) -> None:
        """Stdin's lines, then its end; whatever stops the reading (bytes that are not text, a
        broken pipe) is an end too, so the server never waits for a reader that is gone."""
        try:
            for line in self.stdin:
                self.inbox.put(("line", line))
        except Exception as exc:  # noqa: BLE001 - the reader must always say it has stopped
            _say("agent serve: stopped reading requests: %s: %s" % (type(exc).__name__, exc))
        finally:
            self.inbox.put(("eof", None))

    def _wait_child(self, pid: int) -> None:
        self.inbox.put(("exit", os.waitpid(pid, 0)[1]))

    def _on_line(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        job = parse_request(text)
        if job is not None:
            self.pending.append(job)
        elif self.job is not None and self.job.phase == "running" and self.job.token and not self.job.killed:
            self._renew(self.job)  # a job being killed is not renewed: if it will not die, its lease still expires

    def _on_eof(self, _: None) -> None:
        """The coordinator is gone: its leased jobs with it. Bare paths already read still run."""
        self.eof = True
        self.pending = collections.deque(j for j in self.pending if j.terms is None)
        job = self.job
        if job is not None and job.terms is not None:
            if job.phase == "running":
                self._kill(job, "the coordinator's session ended")
            else:
                _say("agent serve: the coordinator's session ended while %s waited for the lease" % job.spec)
                self.job = None

    def _on_exit(self, status: int) -> None:
        job = self.job
        assert job is not None and job.phase == "running"
        if job.token is not None:
            try:
                lease.release(job.terms["dir"], job.token)
            except OSError as exc:
                _say("agent serve: could not release the lease in %s: %s" % (job.terms["dir"], exc))
        if job.killed:
            self._send({"event": "error", "kind": "LeaseLost", "message": "job killed: %s" % job.killed})
        self._end(exit_code(status), job.pid)

    # -- timers ---------------------------------------------------------------------------

    def _wake_in(self, now: float) -> Optional[float]:
        job = self.job
        if job is not None and job.phase == "waiting":
            return max(0.0, job.next_try - now)
        if job is not None and job.phase == "running" and job.token and not job.killed:
            return max(0.0, job.since + RENEW_SHARE * job.terms["ttl_s"] - now)
        return None  # nothing due: sleep until an input arrives

    def _tick(self, now: float) -> None:
        job = self.job
        if job is not None and job.phase == "waiting" and now >= job.next_try:
            self._try_lease(job, now)
        elif job is not None and job.phase == "running" and job.token and not job.killed:
            silent = now - job.since
            if silent > RENEW_SHARE * job.terms["ttl_s"]:
                self._kill(job, "no heartbeat from the coordinator for %.1f s (lease ttl %g s)"
                           % (silent, job.terms["ttl_s"]))

    # -- a job's way ----------------------------------------------------------------------

    def _start(self, job: JobRequest) -> None:
        self.job = job
        if job.problem:
            self._send({"event": "error", "kind": "ProtocolError", "message": job.problem})
            self._end(2)
        elif job.terms is None:
            self._fork(job)
        else:
            job.phase, job.since = "waiting", time.monotonic()
            self._try_lease(job, job.since)

    def _try_lease(self, job: JobRequest, now: float) -> None:
        t = job.terms
        holder = {k: t[k] for k in ("owner", "host", "pid")}
        holder["job_id"] = t.get("job_id")
        try:
            t["dir"] = t.get("dir") or lease.board_dir()
            got = lease.try_acquire(t["dir"], holder, float(t["ttl_s"]))
        except OSError as exc:
            self._send({"event": "error", "kind": "LeaseError", "message": "cannot take the lease in %s: %s"
                        % (t.get("dir") or "its directory", exc)})
            self._end(1)
            return
        if got.granted:
            job.token = got.lease["token"]
            if got.previous is None:
                self._send({"event": "lease", "state": "granted"})
            else:
                p = got.previous
                _say("lease of %s taken over from %s@%s pid %s (%s)" % (
                    t["dir"], p.get("owner"), p.get("host"), p.get("pid"), got.reason))
                self._send({"event": "lease", "state": "taken_over", "previous": p, "reason": got.reason})
            self._fork(job)
            return
        held = got.lease
        seen = tuple(held.get(k) for k in ("owner", "host", "pid", "started"))
        if seen != job.holder:
            job.holder = seen
            self._send({"event": "lease", "state": "waiting", "holder": held})
        waited = now - job.since
        if waited >= t["wait_s"]:
            self._send({"event": "error", "kind": BoardBusy.__name__, "message": "board busy: held by %s (waited %.0f s)"
                        % (lease.holder_text(held), waited)})
            self._end(1)
        else:
            job.next_try = now + RETRY_S

    def _fork(self, job: JobRequest) -> None:
        sys.stderr.flush()
        server = os.getpid()
        pid = os.fork()
        if pid == 0:  # the job's own process
            code = 70
            try:
                _become_job_process(server)
                code = self.run_child(job.spec)
            finally:
                sys.stderr.flush()
                os._exit(code)
        try:
            os.setpgid(pid, pid)  # the child does it too; whoever is first wins the race
        except OSError:
            pass
        job.phase, job.pid, job.since = "running", pid, time.monotonic()
        threading.Thread(target=self._wait_child, args=(pid,), daemon=True).start()

    def _renew(self, job: JobRequest) -> None:
        try:
            mine = lease.renew(job.terms["dir"], job.token, float(job.terms["ttl_s"]))
        except OSError as exc:
            _say("agent serve: could not renew the lease in %s: %s" % (job.terms["dir"], exc))
            return
        if mine is None:
            job.token = None  # someone else's now: nothing of ours to renew or release
            self._kill(job, "its lease in %s is no longer its own (taken over, or broken by hand)" % job.terms["dir"])
        else:
            job.since = time.monotonic()

    def _kill(self, job: JobRequest, why: str) -> None:
        job.killed = why
        _say("agent serve: killing job process group %d: %s" % (job.pid, why))
        try:
            os.killpg(job.pid, signal.SIGKILL)
        except OSError:  # its group gone already (the job itself may still be exiting)
            try:
                os.kill(job.pid, signal.SIGKILL)
            except OSError:
                pass

    def _end(self, code: int, pid: int = 0) -> None:
        """Close the current request: its stderr's end marker, then its exit event."""
        _say(STDERR_END)  # the job's stderr is complete (it may trail the exit event)
        event: Dict[str, Any] = {"event": "exit", "code": code}
        if pid:
            event["pid"] = pid
        self._send(event)
        self.job = None
        self._tidy()

    def _tidy(self) -> None:
        if self.workdir:  # never the specs of this server's queued jobs
            tidy(self.workdir, keep=[j.spec for j in self.pending])
            power.recover_in(self.workdir, _say)  # a power mode whose job was killed, or died with a server

    def _send(self, event: Dict[str, Any]) -> None:
        try:
            self.emit(event)
        except OSError:
            pass  # the coordinator is gone (a broken pipe): its job is being ended anyway


def _become_job_process(server: int) -> None:
    """Own process group (the server can kill the job and all it starts), and on Linux die
    with the server, so a killed server never leaves a measuring orphan."""
    os.setpgid(0, 0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the next requests are the server's, not the job's
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the server's own kill on a missed heartbeat or end of input still holds
    if os.getppid() != server:
        os._exit(70)  # the server died before the request took effect


def _say(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def serve(stdin: IO[str], emit: Callable[[dict], None], run_child: Callable[[str], int],
          workdir: Optional[str] = None) -> int:
    """Serve requests until stdin ends; ``run_child(spec_path)`` runs in the forked child."""
    return Server(stdin, emit, run_child, workdir).run()
