"""An exclusive, time-limited lease on a board, kept in one fixed place on the board.

Two coordinators (a nightly sweep, a CI gate job, maybe on two machines) may drive one
board; measuring on it at the same time ruins both numbers (docs/measurement.md, trap 4). So the
lease lives on the board, where every coordinator's agent sees it: in ``board_dir()``
(``/tmp/edge-harness-<uid>``, or ``$EDGE_HARNESS_LEASE_DIR`` where the board sets it), never
in a work directory, which each inventory may choose differently for the same board. /tmp,
not the home directory: a lab's home directories may be one NFS share for many boards.
Every operation runs
under ``flock`` on ``lease.lock``: the kernel drops that lock when its process dies, so the
mutex itself can never go stale. The lease proper is ``lease.json``, replaced atomically. It
expires on the board's clock (``time.time()`` there), so a coordinator killed without
releasing blocks the board for at most one ttl. A random token names the holder: a holder
whose expired lease was taken over cannot renew or release its successor's.

A lease also records the agent server that holds it on the board. On Linux, where a job
process dies with its server (serve.py), a lease whose server is gone (same boot and pid
namespace, no process with that pid and start time) is free at once: a server killed with
its coordinator (Ray kills an actor's children, a timeout kills the session's process group)
leaves nobody measuring, and the next job need not wait out the ttl.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import time
from typing import Any, Dict, Iterator, NamedTuple, Optional

LOCK_FILE = "lease.lock"
STATE_FILE = "lease.json"
LEASE_DIR_ENV = "EDGE_HARNESS_LEASE_DIR"
_TMP = "/tmp"

Lease = Dict[str, Any]


class Attempt(NamedTuple):
    """What ``try_acquire`` found. ``granted``: ``lease`` is ours (with the token to renew and
    release it); else ``lease`` is the holder's. ``previous``: the stale lease we took over,
    ``reason`` why it was stale (see ``vacancy``)."""

    granted: bool
    lease: Lease
    previous: Optional[Lease] = None
    reason: str = ""


def board_dir() -> str:
    """Where this board keeps its lease, the same for every coordinator and inventory:
    ``$EDGE_HARNESS_LEASE_DIR`` when the board's environment sets it (boards that share one
    /tmp, such as a test lab's network namespaces), else ``/tmp/edge-harness-<uid>``, made
    here (mode 0700) and trusted only as a directory of this user's own, not a link: anyone
    may create names in /tmp. Raises OSError (with what to do) otherwise."""
    chosen = os.environ.get(LEASE_DIR_ENV, "").strip()
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        return chosen
    path = os.path.join(_TMP, "edge-harness-%d" % os.getuid())
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise OSError("%s is not a directory of this user's own (a link, another user's, or writable by others): "
                      "remove it, or set %s on the board" % (path, LEASE_DIR_ENV))
    return path


def try_acquire(lease_dir: str, holder: Lease, ttl_s: float) -> Attempt:
    """Take the lease if it is free (absent or stale). ``holder``: owner, host, pid, job_id;
    the calling process is recorded as the lease's agent on the board."""
    with _locked(lease_dir):
        now = time.time()
        current = _read(lease_dir)
        reason = None if current is None else vacancy(current, now)
        if current is not None and reason is None:
            return Attempt(False, public(current))
        lease = dict(holder, started=now, renewed=now, expires=now + ttl_s, ttl_s=ttl_s, agent=_identity(os.getpid()),
                     token=secrets.token_hex(16))
        _write(lease_dir, lease)
        return Attempt(True, lease, None if current is None else public(current), reason or "")


def renew(lease_dir: str, token: str, ttl_s: float) -> Optional[Lease]:
    """Extend our lease to now + ttl_s; None when it is no longer ours (taken over, broken)."""
    with _locked(lease_dir):
        current = _read(lease_dir)
        if current is None or current.get("token") != token:
            return None
        now = time.time()
        current.update(renewed=now, expires=now + ttl_s, ttl_s=ttl_s)
        _write(lease_dir, current)
        return current


def release(lease_dir: str, token: str) -> bool:
    """Free the lease if it is still ours; someone else's is left alone."""
    with _locked(lease_dir):
        current = _read(lease_dir)
        if current is None or current.get("token") != token:
            return False
        os.remove(os.path.join(lease_dir, STATE_FILE))
        return True


def show(lease_dir: str) -> Optional[Lease]:
    """The lease as it stands (perhaps expired), without its token; None when there is none."""
    with _locked(lease_dir):
        current = _read(lease_dir)
    return None if current is None else public(current)


def break_lease(lease_dir: str) -> Optional[Lease]:
    """Free the board by hand, whoever holds it; returns what was there (None: it was free)."""
    with _locked(lease_dir):
        current = _read(lease_dir)
        if current is not None:
            os.remove(os.path.join(lease_dir, STATE_FILE))
    return None if current is None else public(current)


def vacancy(lease: Lease, now: float) -> Optional[str]:
    """Why a lease no longer holds the board (``expired at ...``, ``its agent (pid N) is gone``),
    or None while it does."""
    if float(lease["expires"]) < now:
        return "expired at %s" % utc_text(float(lease["expires"]))
    agent = lease.get("agent")
    if isinstance(agent, dict) and _gone(agent):
        return "its agent (pid %s) is gone" % agent.get("pid")
    return None


def public(lease: Lease) -> Lease:
    """A lease as others may see it: everything but the holder's token."""
    return {k: v for k, v in lease.items() if k != "token"}


def holder_text(lease: Lease) -> str:
    """``OWNER@HOST pid P since 2026-01-02 03:04:05 UTC`` (the board's clock)."""
    return "%s@%s pid %s since %s" % (lease.get("owner"), lease.get("host"), lease.get("pid"),
                                      utc_text(float(lease.get("started", 0))))


def utc_text(stamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    except (OverflowError, ValueError, OSError):
        return "an unreadable time"


def _identity(pid: int) -> Dict[str, Any]:
    """A process as this board knows it: pid, and on Linux its start time, the boot and the
    pid namespace (a pid alone may be reused, or belong to another container)."""
    me: Dict[str, Any] = {"pid": pid}
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            me["boot"] = f.read().strip()
        me["pidns"] = os.readlink("/proc/self/ns/pid")
    except OSError:
        return me  # not Linux: only expiry frees a lease
    me["start"] = _start_time(pid)
    return me


def _start_time(pid: int) -> Optional[str]:
    """The process's start time (clock ticks after boot); None when it is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _gone(agent: Dict[str, Any]) -> bool:
    """The agent's process no longer runs; False whenever this process cannot tell (another
    boot or pid namespace, no /proc)."""
    here = _identity(os.getpid())
    if "start" not in here or agent.get("boot") != here["boot"] or agent.get("pidns") != here["pidns"]:
        return False
    return not isinstance(agent.get("pid"), int) or _start_time(agent["pid"]) != agent.get("start")


@contextlib.contextmanager
def _locked(lease_dir: str) -> Iterator[None]:
    os.makedirs(lease_dir, exist_ok=True)
    fd = os.open(os.path.join(lease_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def _read(lease_dir: str) -> Optional[Lease]:
    """The stored lease; a file that is not one of ours (hand-edited, foreign, a time that is
    not a finite time: NaN would never expire) counts as none."""
    try:
        with open(os.path.join(lease_dir, STATE_FILE), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    for key in ("started", "renewed", "expires", "ttl_s"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < _MAX_TIME:
            return None
    if not all(isinstance(data.get(k), str) for k in ("owner", "host", "token")) or \
            isinstance(data.get("pid"), bool) or not isinstance(data.get("pid"), int):
        return None
    return data


# Later than any board's clock (year ~5138): a bigger "time" is not one.
_MAX_TIME = 1e11


def _write(lease_dir: str, lease: Lease) -> None:
    tmp = os.path.join(lease_dir, STATE_FILE + ".tmp")  # one writer at a time: we hold the lock
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(lease, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(lease_dir, STATE_FILE))
