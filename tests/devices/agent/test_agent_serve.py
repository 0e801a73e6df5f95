"""``agent serve``: one warm process, a fresh forked process per job, and an ``exit`` event
after each job's events, so the coordinator can tell where one job ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent_testlib import REPO, make_spec, write_classifier, write_spec

from devices.agent.serve import STDERR_END


def serve(tmp_path: Path, specs: list[dict], timeout: float = 120) -> tuple[int, list[dict], str]:
    paths = [write_spec(tmp_path, s, f"spec{i}.json") for i, s in enumerate(specs)]
    stdin = "".join(f"{p}\n" for p in paths) + "\n"  # a blank line is ignored
    proc = subprocess.run([sys.executable, "-m", "devices.agent", "serve"], input=stdin, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, events, proc.stderr


def jobs_of(events: list[dict]) -> list[list[dict]]:
    """Events split at each ``exit``, the exit event closing its job."""
    out, cur = [], []
    for e in events[1:]:
        cur.append(e)
        if e["event"] == "exit":
            out.append(cur)
            cur = []
    assert not cur, "events after the last exit"
    return out


def test_each_job_runs_in_its_own_forked_process(tmp_path: Path) -> None:
    model = write_classifier(tmp_path / "m.onnx")
    ok = make_spec(model, "sleep", job_id="a", runtime_options={"latency_ms": 1})
    bad = make_spec(model, "sleep", job_id="b", runtime_options={"latency_ms": 1, "fail_on": "load"})
    code, events, stderr = serve(tmp_path, [ok, bad, dict(ok, job_id="c")])
    assert code == 0 and events[0]["event"] == "ready"
    server_pid = events[0]["pid"]
    jobs = jobs_of(events)
    assert [[e["event"] for e in j] for j in jobs] == [
        ["facts", "progress", "progress", "progress", "result", "exit"],
        ["facts", "progress", "error", "exit"],
        ["facts", "progress", "progress", "progress", "result", "exit"],
    ]
    assert [j[-1]["code"] for j in jobs] == [0, 1, 0]
    assert stderr.count(STDERR_END + "\n") == 3  # each job's stderr closed by the marker
    pids = [j[0]["pid"] for j in jobs]
    assert len(set(pids)) == 3 and server_pid not in pids  # a fresh process each time
    assert [j[-1]["pid"] for j in jobs] == pids
    assert jobs[0][-2]["job_id"] == "a" and jobs[2][-2]["job_id"] == "c"


def test_a_hung_job_is_ended_by_its_watchdog_and_the_server_goes_on(tmp_path: Path) -> None:
    model = write_classifier(tmp_path / "m.onnx")
    hung = make_spec(model, "sleep", job_id="hung", runtime_options={"latency_ms": 60_000},
                     measure={"timeout_s": 1.0, "warmup_iters": 1, "warmup_s": 0.0})
    fine = make_spec(model, "sleep", job_id="fine", runtime_options={"latency_ms": 1})
    code, events, _ = serve(tmp_path, [hung, fine], timeout=60)
    jobs = jobs_of(events)
    assert code == 0 and len(jobs) == 2
    assert jobs[0][-1]["code"] == 1 and "timed out" in jobs[0][-2]["message"]
    assert jobs[1][-1]["code"] == 0 and jobs[1][-2]["event"] == "result"


def test_bytes_that_are_not_text_end_the_server_instead_of_hanging_it() -> None:
    """The reader thread stops on undecodable input; the server must see that as the end."""
    proc = subprocess.run([sys.executable, "-m", "devices.agent", "serve"], input=b"\xff\xfe\xfd garbage\n",
                          cwd=REPO, capture_output=True, timeout=60, env={"PYTHONIOENCODING": "utf-8", "PATH": ""})
    events = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert proc.returncode == 0 and [e["event"] for e in events] == ["ready"]
    assert b"stopped reading requests: UnicodeDecodeError" in proc.stderr
