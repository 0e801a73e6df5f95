"""The device agent: the one program that runs on an edge board.

It measures one model under one runtime and prints JSON lines on stdout. It imports only
the standard library, numpy and the runtime it uses (lazily), and parses on Python 3.8
(JetPack 5), so it ships as a single zipapp (``harness/coordinator/bundle.py``) with no install step.
It must never import ``harness`` or ``reports``: those live on the coordinator.
"""

AGENT_VERSION = "0.1.0"
PROTOCOL = 5  # highest spec protocol this agent understands (spec.py names each step)
