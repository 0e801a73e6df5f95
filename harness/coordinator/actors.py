"""One Ray actor per site, placed on the node that can reach its boards; a thread per board in it.

A board with ``site: X`` is driven from a node advertising the custom resource ``site:X``
(the machine on that lab's network); any other board from the coordinator's own node,
which is where the inventory says it is reachable from, and counts as one more site. Each
site's boards share one ``SiteRunner`` actor (harness/coordinator/site.py), where each
board has its own ``DeviceRunner`` on its own thread: a process per site, not per board.
A site no node advertises leaves its boards unplaceable: they are reported, not waited for
(a pending actor would hang).

The driver's side speaks per board: ``run_job(board, ...)``, ``probe(board)`` and
``warm(board)`` each return one ObjectRef, as a board's own actor did. A board's failures
come back as results; a Ray error on a call means its site actor died (or the call could
not reach it), and ``lost`` starts the site again.
"""

from __future__ import annotations

import logging
from typing import Any

from harness.config import Device
from harness.config.suite import LeaseSettings
from harness.coordinator.files import FileRef, FileServer, Stager
from harness.coordinator.lease import LeaseTerms
from harness.coordinator.notices import Notices
from harness.coordinator.runner import Payload
from harness.coordinator.site import SiteRunner
from harness.records import Job

log = logging.getLogger("edge_harness.coordinator")

# Each site actor holds a sliver of its site's resource: 10 000 sweeps fit behind one ``site:X: 1``.
SITE_SHARE = 1e-4
# The boards of the coordinator's own node (no ``site:``), as a site.
HOME = ""
# How long the driver waits for a site actor to say it lives (only after an unexplained Ray error).
PING_S = 30.0


def site_label(site: str) -> str:
    return f"site {site}" if site else "the coordinator's node"


class DeviceActors:
    def __init__(self, devices: tuple[Device, ...], agent: FileRef, driver_env: dict[str, str], stage_dir: str,
                 grace_s: float, lease: LeaseSettings, owner: str):
        """Start every site's actor and let each board connect and start its agent server
        right away: started before the variants are built, that start-up overlaps the build.
        Each job holds its board's lease on ``lease``'s terms, in the name of ``owner`` (the
        run) and of this process (the driver)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.home = ray.get_runtime_context().get_node_id()
        self._pin_home = NodeAffinitySchedulingStrategy(node_id=self.home, soft=False)
        self._server = ray.remote(num_cpus=0)(FileServer).options(scheduling_strategy=self._pin_home).remote([agent])
        self._stager = Stager(self._server, self.home, stage_dir)
        self._args = (agent, driver_env, self._stager, grace_s, LeaseTerms.of(lease, owner))
        self._notices = ray.remote(num_cpus=0)(Notices).options(scheduling_strategy=self._pin_home).remote()
        self.devices = {d.name: d for d in devices}
        sites = {k for k in ray.cluster_resources() if k.startswith("site:")}
        self.unplaceable = {
            d.name: f"no Ray node advertises resource site:{d.site} (start one on that lab's network with "
                    f"ray start --address ... --resources '{{\"site:{d.site}\": 1}}')"
            for d in devices if d.site and f"site:{d.site}" not in sites
        }  # fmt: skip
        self.boards = tuple(name for name in self.devices if name not in self.unplaceable)  # placeable, in order
        self.site_of = {name: self.devices[name].site or HOME for name in self.boards}
        self._handles: dict[str, Any] = {}  # site -> its live actor
        for site in dict.fromkeys(self.site_of.values()):
            self.spawn_site(site)

    # -- per board: one ObjectRef per call ------------------------------------------------------

    def run_job(self, board: str, job: Job, job_id: str, payload: Payload) -> Any:
        return self._handle(board).run_job.remote(board, job, job_id, payload)

    def probe(self, board: str) -> Any:
        return self._handle(board).probe.remote(board)

    def warm(self, board: str) -> Any:
        return self._handle(board).warm.remote(board)

    def _handle(self, board: str) -> Any:
        return self._handles[self.site_of[board]]

    # -- sites ------------------------------------------------------------------------------------

    def spawn_site(self, site: str) -> Any:
        """A fresh actor for the site (also after its previous one died), warming each of its boards."""
        import ray

        old = self._handles.get(site)
        if old is not None:  # dead, or unreachable: either way no two actors ever drive one board
            ray.kill(old, no_restart=True)
        boards = tuple(self.devices[b] for b in self.boards if self.site_of[b] == site)
        if site:
            opts: dict[str, Any] = {"resources": {f"site:{site}": SITE_SHARE}}
        else:
            opts = {"scheduling_strategy": self._pin_home}
        cls = ray.remote(num_cpus=0, max_restarts=0, max_concurrency=max(1000, 4 * len(boards)))(SiteRunner)
        handle = cls.options(**opts).remote(site, boards, *self._args, self._notices)
        for d in boards:
            handle.warm.remote(d.name)  # a board's calls run in order: its first job waits for this
        self._handles[site] = handle
        return handle

    def lost(self, board: str, error: BaseException) -> str:
        """A call for ``board`` failed in Ray rather than in the board's runner (whose failures
        are results): its site actor died, or the call could not be carried out. Starts the
        site again if its current actor is the one gone (the other boards' failed calls from
        the same death find it replaced already); returns the reason for the job."""
        import ray

        site = self.site_of[board]
        handle = self._handles[site]
        dead = getattr(error, "actor_id", None)
        if isinstance(error, ray.exceptions.RayActorError) and dead is not None:
            gone = dead == handle._actor_id.hex()  # noqa: SLF001 - else an earlier actor, replaced already
        elif self._alive(handle):  # not an actor's death: only this call failed; the board starts afresh
            handle.reset.remote(board)
            return f"device actor call failed: {_first_line(error)}"
        else:
            gone = True
        if gone:
            log.warning("the actor of %s died (%s): starting it again, with its %d board(s)", site_label(site),
                        _first_line(error), sum(s == site for s in self.site_of.values()))
            self.spawn_site(site)
        return f"site actor died ({site_label(site)}; started again): {_first_line(error)}"

    def _alive(self, handle: Any) -> bool:
        import ray

        try:
            ray.get(handle.ping.remote(), timeout=PING_S)
        except (ray.exceptions.RayError, TimeoutError):
            return False
        return True

    def serve_files(self, files: list[FileRef]) -> None:
        """Make the built variants' files fetchable by actors on other nodes."""
        import ray

        ray.get(self._server.register.remote(files))

    def notes(self) -> dict[str, str | None]:
        """The boards' notes posted since the last call (None: that board's note is cleared)."""
        import ray

        return ray.get(self._notices.drain.remote())

    def kill_all(self) -> None:
        import ray

        for handle in self._handles.values():
            ray.kill(handle)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
