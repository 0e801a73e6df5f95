"""One Ray actor per site drives every board of that site, each board on its own thread.

Driving a board is waiting on it (SSH reads, an agent measuring), so one process holds a
whole site's boards: each board keeps its own ``DeviceRunner`` (its transport and agent
server, its lease, its one-time costs) and runs its calls, in the order they came, on a
single thread of its own. Two boards never share a runner, a connection or a thread; one
board never runs two calls at once.

What stays per board:

- a failure: a runner that raises is that call's failed result (a job's is retryable, so a
  board that keeps failing goes down in the scheduler as a board did when its actor died),
  and the board gets a fresh runner for its next call; the other boards never see it;
- a hang: the board's thread waits (every network wait is bounded by the transport), its
  later calls queue behind it, and every other board goes on on its own thread.

A site's boards warm up (connect, start their agent server) and are re-probed at most
``STARTS_AT_ONCE`` at a time: a site of hundreds would otherwise open hundreds of SSH
handshakes in one process at the same instant, each slowed past its connect timeout.

What no longer is: the process. A site actor that dies (OOM, a crash in native code) takes
its boards' running calls with it; the driver (``DeviceActors.lost``) starts a new one and
warms its boards again, and their jobs are retried like any transport failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from harness.config import Device
from harness.coordinator.files import FileRef, Stager
from harness.coordinator.lease import LeaseTerms
from harness.coordinator.runner import DeviceRunner, Payload, _node_id
from harness.records import Job, JobResult, one_line

log = logging.getLogger("edge_harness.coordinator")

T = TypeVar("T")

# How much of a runner's traceback a failed result keeps (``details["error_full"]``).
MAX_TRACE_CHARS = 4000
# Boards of one site that connect and start their agent server (warm) or are re-probed at once.
STARTS_AT_ONCE = 32


class SiteRunner:
    """Every board of one site, each with its own ``DeviceRunner`` on its own thread.

    An asyncio actor: each method awaits the board's single-thread executor, so calls of
    different boards run at once and the calls of one board run one after the other, in the
    order they reach the actor (a board's ``warm``, sent first, before its first job). The
    arguments are a ``DeviceRunner``'s, for every board (``stager`` is shared, each board
    counting its own fetched bytes)."""

    def __init__(self, site: str, devices: tuple[Device, ...], agent: FileRef, driver_env: dict[str, str],
                 stager: Stager, grace_s: float, lease: LeaseTerms | None = None, notices: Any = None):
        # The boards' threads block in ray.get (a site node stages files from the coordinator's):
        # Ray's warning about blocking calls in an asyncio actor is about its event loop, not them.
        os.environ.setdefault("RAY_WARN_BLOCKING_GET_INSIDE_ASYNC", "0")
        self.site = site
        self.devices = {d.name: d for d in devices}
        self._make: Callable[[Device], DeviceRunner] = lambda d: DeviceRunner(
            d, agent, driver_env, stager.for_board(), grace_s, lease, notices)
        self._runners: dict[str, DeviceRunner] = {}  # touched only from each board's own thread
        self._threads = {name: ThreadPoolExecutor(1, thread_name_prefix=f"board-{name}") for name in self.devices}
        self._starts = threading.BoundedSemaphore(STARTS_AT_ONCE)

    # -- the driver's calls (one ObjectRef each) -----------------------------------------------

    async def run_job(self, board: str, job: Job, job_id: str, payload: Payload) -> JobResult:
        """Measure ``job`` on ``board``; every failure, a raising runner's too, is a failed result."""
        return await self._on(board, self._run_job, job, job_id, payload)

    async def probe(self, board: str) -> str | None:
        """None if ``board`` answers a trivial command, else why not."""
        return await self._on(board, self._probe)

    async def warm(self, board: str) -> None:
        """Connect ``board`` and start its agent server ahead of its first job."""
        await self._on(board, self._warm)

    async def reset(self, board: str) -> None:
        """Drop ``board``'s runner: its next call connects afresh (after a call Ray itself failed)."""
        await self._on(board, self._reset)

    async def ping(self) -> str | None:
        """The node this actor runs on (the driver asks whether the actor lives)."""
        return _node_id()

    # -- on the board's thread -----------------------------------------------------------------

    async def _on(self, board: str, fn: Callable[..., T], *args: Any) -> T:
        if board not in self._threads:
            raise KeyError(f"board {board!r} is not driven by site actor {self.site or '(coordinator)'}")
        return await asyncio.wrap_future(self._threads[board].submit(fn, board, *args))

    def _runner(self, board: str) -> DeviceRunner:
        runner = self._runners.get(board)
        if runner is None:
            runner = self._runners[board] = self._make(self.devices[board])
        return runner

    def _run_job(self, board: str, job: Job, job_id: str, payload: Payload) -> JobResult:
        try:
            result = self._runner(board).run_job(job, job_id, payload)
        except Exception as e:  # noqa: BLE001 - a board's bug is its own job's failure, never its site's
            trace = self._raised(board, "a job", e)
            result = JobResult("failed", one_line(f"the runner of {board} raised {type(e).__name__}: {e}"),
                               variant=payload.variant,
                               details={"retryable": True, "board": board, "ray_node": _node_id(), "error_full": trace})
        result.details["ray_actor"] = _actor_id()  # the site actor that drove the board
        return result

    def _probe(self, board: str) -> str | None:
        try:
            with self._starts:
                return self._runner(board).probe()
        except Exception as e:  # noqa: BLE001
            self._raised(board, "a probe", e)
            return one_line(f"the runner of {board} raised {type(e).__name__}: {e}")

    def _warm(self, board: str) -> None:
        try:
            with self._starts:
                self._runner(board).warm()
        except Exception as e:  # noqa: BLE001 - the first job meets the fault again and reports it
            self._raised(board, "warming", e)

    def _reset(self, board: str) -> None:
        runner = self._runners.pop(board, None)
        if runner is not None:
            try:
                runner.close()
            except Exception as e:  # noqa: BLE001 - a broken runner may not close cleanly; it is dropped anyway
                log.info("closing the runner of %s: %s: %s", board, type(e).__name__, e)

    def _raised(self, board: str, what: str, e: Exception) -> str:
        """Log a runner's exception, drop that runner (the board's next call starts afresh, as a
        respawned actor did) and return the traceback."""
        trace = traceback.format_exc()
        log.error("the runner of %s raised during %s (it starts afresh): %s", board, what, trace)
        self._reset(board)
        return trace[-MAX_TRACE_CHARS:]


def _actor_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None
