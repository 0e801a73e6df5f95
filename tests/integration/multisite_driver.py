"""Run in a fresh process by test_multisite.py: two Ray nodes on this machine, the second
advertising ``site:lab-b``, and a sweep joined to them with ``--ray-address``.

Prints one JSON line: the sweep's exit code and both nodes' ids. A separate process keeps
this cluster apart from the test session's own Ray instance.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")


def main(argv: list[str]) -> None:
    from ray.cluster_utils import Cluster

    from harness.cli import main as harness

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        site = cluster.add_node(num_cpus=1, resources={"site:lab-b": 1})
        cluster.wait_for_nodes()
        code = harness(["sweep", *argv, "--ray-address", cluster.address])
        print(json.dumps({"code": code, "head": cluster.head_node.node_id, "site": site.node_id}))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
