"""Old files in the board's work directory: job specs and dead partial uploads.

The coordinator writes one spec per job, ``<workdir>/jobs/<job id>.json``, and uploads each
file into ``<workdir>/cache/`` under a temporary name (``<name>.tmp-<random>``) that it
renames when the upload is whole. Thousands of jobs a night, or an upload cut by a lost link
(the coordinator cannot remove what it can no longer reach), would leave them there for good.
``serve --workdir DIR`` calls ``tidy`` when it starts and after every job:

- a spec goes once it is not among the newest ``KEEP_SPECS``, or older than ``SPEC_MAX_AGE_S``,
  but never one younger than ``MIN_SPEC_AGE_S`` (another coordinator sharing the work
  directory may have a job waiting for the board with it) nor one of this server's own jobs;
- a temporary file of ``jobs/`` or ``cache/`` goes once nothing has written it for
  ``PARTIAL_MAX_AGE_S``: a live upload makes progress at least every minute, or fails.

Only regular files with these names, in these two directories, are ever removed.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Iterable, List, Optional, Tuple

KEEP_SPECS = 100
SPEC_MAX_AGE_S = 86400.0
MIN_SPEC_AGE_S = 3600.0
PARTIAL_MAX_AGE_S = 3600.0
TMP_MARK = ".tmp-"


def _files(directory: str) -> List[Tuple[str, float]]:
    """(name, mtime) of the regular files (not links) of ``directory``; none when it is not there."""
    out = []
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        try:
            st = os.lstat(os.path.join(directory, name))
        except OSError:
            continue  # removed meanwhile (another server tidies the same directory)
        if stat.S_ISREG(st.st_mode):
            out.append((name, st.st_mtime))
    return out


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def tidy(workdir: str, keep: Iterable[str] = (), now: Optional[float] = None) -> int:
    """Remove old specs and dead partial uploads of ``workdir`` (rules above); ``keep``: spec
    paths still to be used. Returns how many files went; never raises."""
    now = time.time() if now is None else now
    keep = {os.path.abspath(p) for p in keep}
    removed = 0
    jobs = os.path.join(workdir, "jobs")
    specs = sorted(((mtime, name) for name, mtime in _files(jobs) if name.endswith(".json") and TMP_MARK not in name),
                   reverse=True)
    for rank, (mtime, name) in enumerate(specs):
        path = os.path.join(jobs, name)
        age = now - mtime
        if os.path.abspath(path) in keep or age < MIN_SPEC_AGE_S:
            continue
        if rank >= KEEP_SPECS or age > SPEC_MAX_AGE_S:
            removed += _remove(path)
    for directory in (jobs, os.path.join(workdir, "cache")):
        for name, mtime in _files(directory):
            if TMP_MARK in name and now - mtime > PARTIAL_MAX_AGE_S:
                removed += _remove(os.path.join(directory, name))
    return removed
