"""One Ray actor per board, placed on the node that can reach the board.

A board with ``site: X`` is driven from a node advertising the custom resource ``site:X``
(the machine on that lab's network); any other board from the coordinator's own node,
which is where the inventory says it is reachable from. A site no node advertises leaves
its boards unplaceable: they are reported, not waited for (a pending actor would hang).
"""

from __future__ import annotations

from typing import Any

from harness.config import Device
from harness.config.suite import LeaseSettings
from harness.coordinator.files import FileRef, FileServer, Stager
from harness.coordinator.lease import LeaseTerms
from harness.coordinator.notices import Notices
from harness.coordinator.runner import DeviceRunner

# Each actor holds a sliver of its site's resource: 10 000 boards fit behind one ``site:X: 1``.
SITE_SHARE = 1e-4


class DeviceActors:
    def __init__(self, devices: tuple[Device, ...], agent: FileRef, driver_env: dict[str, str], stage_dir: str,
                 grace_s: float, lease: LeaseSettings, owner: str):
        """Start every board's actor and let it connect and start its agent server right away:
        started before the variants are built, that start-up overlaps the build. Each job
        holds its board's lease on ``lease``'s terms, in the name of ``owner`` (the run) and of
        this process (the driver)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.home = ray.get_runtime_context().get_node_id()
        self._pin_home = NodeAffinitySchedulingStrategy(node_id=self.home, soft=False)
        self._server = ray.remote(num_cpus=0)(FileServer).options(scheduling_strategy=self._pin_home).remote([agent])
        self._stager = Stager(self._server, self.home, stage_dir)
        self._args = (agent, driver_env)
        self._grace_s = grace_s
        self._lease = LeaseTerms.of(lease, owner)
        self._notices = ray.remote(num_cpus=0)(Notices).options(scheduling_strategy=self._pin_home).remote()
        self._cls = ray.remote(num_cpus=0, max_restarts=0)(DeviceRunner)
        self.devices = {d.name: d for d in devices}
        sites = {k for k in ray.cluster_resources() if k.startswith("site:")}
        self.unplaceable = {
            d.name: f"no Ray node advertises resource site:{d.site} (start one on that lab's network with "
                    f"ray start --address ... --resources '{{\"site:{d.site}\": 1}}')"
            for d in devices if d.site and f"site:{d.site}" not in sites
        }  # fmt: skip
        self.handles: dict[str, Any] = {}
        for name in self.devices:
            if name not in self.unplaceable:
                self.spawn(name)

    def spawn(self, name: str) -> Any:
        """A fresh actor for the board (also after its previous one died)."""
        d = self.devices[name]
        if d.site:
            opts: dict[str, Any] = {"resources": {f"site:{d.site}": SITE_SHARE}}
        else:
            opts = {"scheduling_strategy": self._pin_home}
        handle = self._cls.options(**opts).remote(d, *self._args, self._stager, self._grace_s, self._lease,
                                                  self._notices)
        handle.warm.remote()  # actor calls run in order: the first job waits for it
        self.handles[name] = handle
        return handle

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

        for handle in self.handles.values():
            ray.kill(handle)
