"""Who and where the agent is: the ``facts`` event that opens every agent output.

Stored beside each result, like optimum-benchmark saves the environment with every report.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any, Dict, Iterable, List

import numpy as np

from . import AGENT_VERSION, PROTOCOL
from .hostfacts import collect as collect_host
from .runtimes import RUNTIMES


def probe_runtime(name: str) -> Dict[str, Any]:
    """The runtime's probe, or ``available: false`` with a reason for an unknown name."""
    cls = RUNTIMES.get(name)
    if cls is None:
        return {
            "name": name,
            "version": None,
            "available": False,
            "devices": [],
            "reason": "unknown runtime (known: %s)" % ", ".join(sorted(RUNTIMES)),
        }
    return cls.probe()


def default_probe_names() -> List[str]:
    """Runtimes a plain ``probe`` reports: every registered one except test helpers."""
    return [name for name, cls in RUNTIMES.items() if not cls.test_only]


def host_facts() -> Dict[str, Any]:
    """Python, numpy, OS and CPU facts of this board."""
    return {
        "event": "facts",
        "protocol": PROTOCOL,
        "agent_version": AGENT_VERSION,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "pid": os.getpid(),
    }


def measure_facts(runtime: str) -> Dict[str, Any]:
    """Facts for ``measure``: host facts plus the chosen runtime's probe."""
    facts = host_facts()
    facts["runtime"] = probe_runtime(runtime)
    return facts


def probe_facts(names: Iterable[str]) -> Dict[str, Any]:
    """Facts for ``probe``: host facts, ``host`` (read from the board) and ``runtimes: {name: info}``."""
    facts = host_facts()
    facts["host"] = collect_host()
    facts["runtimes"] = {name: probe_runtime(name) for name in names}
    return facts
