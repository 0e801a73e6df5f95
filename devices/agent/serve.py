"""``serve``: a warm agent that forks a fresh process for every job.

Starting Python and importing numpy costs a board ~0.1-0.3 s of CPU, and each SSH command
another sshd session; a sweep of short jobs over many boards would spend more time there
than measuring. ``serve`` is started once per board and connection: it reads one spec path
per line on stdin, forks, and the child runs exactly what ``measure`` runs (own process,
own memory high-water mark, own watchdog, runtime imported after the fork), writing its
events to the shared stdout. When the child has exited the server writes
``{"event": "exit", "code": N}``, so the coordinator knows where one job's events end, and
``STDERR_END`` on stderr, where the job's log lines end.
End of stdin (the coordinator closed the session, or its connection died) ends the server.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Callable

from . import PROTOCOL

STDERR_END = "__EH_JOB_STDERR_END__"


def exit_code(status: int) -> int:
    """``os.waitstatus_to_exitcode`` (Python 3.9+), for the boards' Python 3.8."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def serve(stdin: IO[str], emit: Callable[[dict], None], run_child: Callable[[str], int]) -> int:
    """Serve jobs until stdin ends; ``run_child(spec_path)`` runs in the forked child."""
    emit({"event": "ready", "protocol": PROTOCOL, "pid": os.getpid()})
    for line in stdin:
        path = line.strip()
        if not path:
            continue
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the job's own process
            code = 70
            try:
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)  # the next spec paths are the server's, not the job's
                code = run_child(path)
            finally:
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        sys.stderr.write(STDERR_END + "\n")  # the job's stderr is complete (it may trail the exit event)
        sys.stderr.flush()
        emit({"event": "exit", "code": exit_code(status), "pid": pid})
    return 0
