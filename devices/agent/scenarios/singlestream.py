"""``single-stream``: one request at a time, each timed on its own (MLPerf's Single-Stream; the
harness's only scenario before operating points, and still the default).

Its window is ``measure.py``'s own loops (``loops.py``: the plain window, the target's, the
interleaved canary's), whose overhead is benchmarked against a bare loop
(benchmarks/overhead.py); this class only names the scenario in the table.
"""

from __future__ import annotations

from .base import Scenario


class SingleStream(Scenario):
    name = "single-stream"
    keys = ()
    parallel = False
