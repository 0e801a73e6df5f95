"""Whatever a board sends, the real runner turns it into a stored job with a status.

A fake agent (a real process behind the real ``LocalTransport``, speaking ``serve``'s
protocol) answers each job with a random or mutated output: fields deleted, nulled or
mistyped at any depth, numbers out of range, truncated and garbage lines, lines nested
past the parser's limit or longer than the line limit, an exit event without a code or
with a wrong one. Every answer must become a ``JobResult`` (never an exception out of the
runner), a malformed one a failure whose one-line reason names the field, never a
transport fault that would mark the board down; every job is stored with a status.
"""

from __future__ import annotations

import copy
import json
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

import harness.store
from devices.agent.serve import STDERR_END
from devices.agent.spec import MeasureSettings
from harness.config.inventory import Device
from harness.coordinator import protocol
from harness.coordinator.files import FileRef
from harness.coordinator import runner as runner_module
from harness.coordinator.runner import DeviceRunner, Payload
from harness.records import Job, JobSettings

N_OUTPUTS = 1000

FAKE_AGENT = textwrap.dedent(f"""
    import json, os, sys
    out = sys.stdout.buffer
    out.write(b'{{"event":"ready","protocol":2,"pid":%d}}\\n' % os.getpid()); out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("cmd") != "job":
            continue  # a heartbeat
        spec = req["spec"]
        answer = os.path.join(os.path.dirname(os.path.dirname(spec)), "outputs",
                              os.path.basename(spec)[:-len(".json")] + ".out")
        with open(answer, "rb") as f:
            data = f.read()
        if data.startswith((b"#endless", b"#silent")):  # the job got the board, then misbehaves
            out.write(b'{{"event":"lease","state":"granted"}}\\n'); out.flush()
        if data.startswith(b"#endless"):  # a board that prints without end (no newline, or short lines)
            chunk = b"x" * 65536 if data.startswith(b"#endless-bytes") else b'{{"event":"progress"}}\\n' * 3000
            while True:
                out.write(chunk); out.flush()
        if data.startswith((b"#silent", b"#mute")):  # a board that never answers
            sys.stdin.readline()
            continue
        out.write(data); out.flush()
        sys.stderr.write({STDERR_END!r} + "\\n"); sys.stderr.flush()
""")

RESULT: dict[str, Any] = {
    "event": "result", "job_id": "j",
    "latency": {"n": 3, "p50_ms": 2.0, "p90_ms": 3.0, "p95_ms": 3.0, "p99_ms": 3.0, "mean_ms": 2.0, "std_ms": 1.0,
                "cv": 0.5, "min_ms": 1.0, "max_ms": 3.0, "throughput_ips": 500.0, "window_s": 0.006,
                "p50_ci_ms": [1.0, 3.0]},
    "samples_ns": [1000000, 2000000, 3000000], "stop": {"reason": "min_reached"},
    "window": {"start_unix": 1.0, "end_unix": 2.0}, "board_state": None, "noisy": None, "unstable": None,
    "warmup": {"iters": 10, "s": 1.0}, "load_s": 0.1, "first_infer_ms": 3.0, "peak_rss_mb": 100.0,
    "rss_before_load_mb": 50.0, "accuracy": 0.5, "eval_n": 10, "threads": 1, "precision": "f32",
    "runtime": {"name": "sleep", "version": "1", "options": {"engine_build_s": 1.5}},
    "energy_mj": None, "avg_power_w": None, "throttled": False, "power_source": "rapl",
    "canary": {"latency": {"n": 3, "p50_ms": 5.0, "p90_ms": 5.5, "p99_ms": 6.0}, "runtime": "sleep"},
}  # fmt: skip
FACTS = {"event": "facts", "protocol": 2, "python": "3.8.10"}
ODD = [None, "", "x", -1, 0, 1.5, 2**70, True, False, [], [1, "a"], {}, {"a": {"b": None}}, float("nan"),
       float("inf"), "0"]


def _paths(value: Any, at: tuple = ()) -> list[tuple]:
    """Every path to a node of ``value`` (keys and list indexes)."""
    out = [at] if at else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


def _mutate(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    event = copy.deepcopy(event)
    for _ in range(rng.choice((1, 1, 2, 3))):
        paths = [p for p in _paths(event) if p != ("event",)]
        if not paths:
            break
        path = rng.choice(paths)
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.35:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD))
    return event


def _line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"  # NaN/Infinity as Python writes them


def _output(rng: random.Random, case: int) -> tuple[bytes, bool]:
    """One job's stdout and whether it is a well-formed answer (a result, an exit code 0)."""
    exit_ok = b'{"event":"exit","code":0}\n'
    kind = case % 10
    if kind == 0:  # the valid answer, as a control
        return _line(FACTS) + _line(RESULT) + exit_ok, True
    if kind in (1, 2, 3):  # a mutated result
        return _line(FACTS) + _line(_mutate(RESULT, rng)) + exit_ok, False
    if kind == 4:  # a mutated error event
        err = _mutate({"event": "error", "kind": "MeasurementError", "message": "boom\nsecond line"}, rng)
        return _line(err) + b'{"event":"exit","code":1}\n', False
    if kind == 5:  # the exit event itself broken
        code = rng.choice([None, "0", 1.5, True, [], {}])
        exit_line = b'{"event":"exit"}\n' if code is None else _line({"event": "exit", "code": code})
        return _line(FACTS) + _line(RESULT) + exit_line, False
    if kind == 6:  # nested past the parser's recursion limit
        deep = b'{"event":"result","latency":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        return _line(FACTS) + deep + exit_ok, False
    if kind == 7:  # longer than the transport's line limit (lowered for the test)
        huge = dict(RESULT, samples_ns=[1000] * 100_000)
        return _line(FACTS) + _line(huge) + exit_ok, False
    if kind == 8:  # garbage: truncated JSON, bytes that are not UTF-8, other JSON values
        junk = rng.choice([_line(RESULT)[: rng.randrange(1, 200)] + b"\n", bytes(rng.randrange(256) for _ in range(64)),
                           b"[1,2,3]\n", b'"event"\n', b'{"event":5}\n', b"null\n", b"\n\n"])
        return junk + b"\n" + exit_ok, False
    # random JSON objects as events
    ev = {"event": rng.choice(["result", "facts", "progress", "error", "lease"]),
          **{rng.choice(["latency", "kind", "message", "state", "holder", "n"]): copy.deepcopy(rng.choice(ODD))
             for _ in range(rng.randrange(4))}}
    return _line(ev) + exit_ok, False


class _HereStager:
    """The files are on this node already (the real Stager fetches them over Ray otherwise)."""

    fetched_bytes = 0

    def local(self, ref: FileRef) -> Path:
        return ref.path


@pytest.fixture()
def runner(tmp_path: Path) -> DeviceRunner:
    agent = tmp_path / "fake_agent.py"
    agent.write_text(FAKE_AGENT)
    device = Device(name="fuzz", kind="local", runtimes=("sleep",), workdir=str(tmp_path / "board"))
    r = DeviceRunner(device, FileRef.of(agent), {}, _HereStager(), grace_s=10)  # type: ignore[arg-type]
    yield r
    r.close()


def test_a_thousand_random_and_mutated_outputs_each_become_a_stored_status(tmp_path: Path, runner: DeviceRunner,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.transport import base

    monkeypatch.setattr(base, "MAX_LINE_BYTES", 300_000)  # above the deeply nested line, below the huge one
    model = tmp_path / "model.bin"
    model.write_bytes(b"model")
    payload = Payload(FileRef.of(model), (1, 3), None, {})
    outputs = tmp_path / "board" / "outputs"
    outputs.mkdir(parents=True)
    rng = random.Random(19)
    settings = JobSettings(MeasureSettings(timeout_s=20))
    jobs = [Job(f"m{i}", "fp32", "fuzz", "sleep", settings) for i in range(N_OUTPUTS)]
    with harness.store.open(tmp_path / "h.db") as store:
        run = store.create_run(suite="fuzz", config={})
        ids = store.add_jobs(run, jobs)
        statuses: dict[str, int] = {}
        for i, job in enumerate(jobs):
            out, well_formed = _output(rng, i)
            job_id = f"fuzz-{i}"
            (outputs / f"{job_id}.out").write_bytes(out)
            result = runner.run_job(job, job_id, payload)
            assert result.status in ("ok", "failed"), (i, out[:300])
            if well_formed:
                assert result.status == "ok" and result.metrics["p50_ms"] == 2.0, (i, result.error)
            if result.status == "failed":
                assert result.error and "\n" not in result.error and len(result.error) < 1500, (i, result.error)
                assert not result.details.get("retryable"), (i, result.error)  # not a transport fault: board stays up
            if b'"event":"exit"}' in out:
                assert result.error == "malformed agent output: exit.code must be an integer, got NoneType None"
            store.record(ids[job.key], result)
            statuses[result.status] = statuses.get(result.status, 0) + 1
        stored = [status for _, _, status in store.jobs(run)]
    assert len(stored) == N_OUTPUTS and set(stored) <= {"ok", "failed"}
    assert statuses["ok"] >= N_OUTPUTS // 10 and statuses["failed"] >= N_OUTPUTS // 2, statuses
    assert runner._server is not None and not runner._server.ended  # one agent server answered them all


def test_a_malformed_field_is_named_in_the_reason() -> None:
    def reason(event: dict[str, Any], code: Any = 0) -> str | None:
        events = protocol.parse_events((json.dumps(event) + "\n" + json.dumps({"event": "exit", "code": code})))
        return protocol.job_output(events, "").error

    assert reason(dict(RESULT, latency=None)) == "malformed agent output: result.latency is missing"
    assert reason(dict(RESULT, latency=dict(RESULT["latency"], p90_ms={"a": 1}))) == (
        "malformed agent output: result.latency.p90_ms must be a finite number, got dict {'a': 1}")
    assert reason(dict(RESULT, latency=dict(RESULT["latency"], n=-3))) == (
        "malformed agent output: result.latency.n must be a non-negative integer, got int -3")
    assert reason(dict(RESULT, samples_ns=[1, None])) == (
        "malformed agent output: result.samples_ns must be a list of non-negative integers (ns)")
    assert reason(dict(RESULT, window=[1, 2])) == "malformed agent output: result.window must be an object or null, got list [1, 2]"
    assert reason(RESULT, code="0") == "malformed agent output: exit.code must be an integer, got str '0'"
    assert reason(RESULT) is None



@pytest.mark.parametrize("mode", ["#endless-bytes", "#endless-lines", "#silent", "#mute"])
def test_endless_or_no_output_fails_the_job_within_its_budget(tmp_path: Path, runner: DeviceRunner,
                                                               monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Garbage without end, or nothing at all (after the lease, or not even the lease's
    answer): the job fails as timed out once timeout_s + grace_s are spent, holding bounded
    output meanwhile; the next job gets a fresh agent."""
    import time

    from harness.transport import base

    monkeypatch.setattr(base, "MAX_LINE_BYTES", 1 << 20)
    monkeypatch.setattr(base, "MAX_ANSWER_CHARS", 4 << 20)
    monkeypatch.setattr(runner_module, "LEASE_ANSWER_S", 1.0)
    runner.grace_s = 1.0
    model = tmp_path / "model.bin"
    model.write_bytes(b"model")
    payload = Payload(FileRef.of(model), (1, 3), None, {})
    (tmp_path / "board" / "outputs").mkdir(parents=True)
    (tmp_path / "board" / "outputs" / "stuck.out").write_bytes(mode.encode())
    (tmp_path / "board" / "outputs" / "next.out").write_bytes(_line(FACTS) + _line(RESULT) + b'{"event":"exit","code":0}\n')
    job = Job("m", "fp32", "fuzz", "sleep", JobSettings(MeasureSettings(timeout_s=2)))
    t0 = time.monotonic()
    result = runner.run_job(job, "stuck", payload)
    assert time.monotonic() - t0 < 2 + 1 + 5  # timeout_s + grace_s, and the kill
    limit = "1 s" if mode == "#mute" else "3 s"  # no answer to the lease either: LEASE_ANSWER_S alone
    assert result.status == "failed" and f"timed out after {limit}" in result.error, result.error
    assert runner.run_job(job, "next", payload).status == "ok"


def test_a_line_past_the_limit_is_dropped_and_the_next_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.transport import base

    monkeypatch.setattr(base, "MAX_LINE_BYTES", 1000)
    buf = base.LineBuffer()
    for _ in range(50):
        buf.feed(b"y" * 400)  # 20 kB without a newline
        assert len(buf.pending) <= 1000
    buf.feed(b"tail of the long line\n{\"event\":\"ok\"}\n")
    assert buf.lines == ['{"event":"ok"}\n'] and buf.dropped == 1
    buf.feed(b"z" * 2000 + b"\n{\"event\":\"next\"}\n")  # a long line that arrives whole, newline and all
    assert buf.lines[-1] == '{"event":"next"}\n' and buf.dropped == 2 and len(buf.lines) == 2
