"""Starting (or joining) Ray the way this harness needs it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Use a running Ray if this process already has one, else start or join one.

    Ray is shut down on exit only if we started it (tests share one instance).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Token auth is Ray's default since 2.5x; saying so explicitly keeps it on and keeps
    # Ray from printing a notice about it on every sweep.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(
        address=address,
        num_cpus=None if address else (num_cpus or os.cpu_count()),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
