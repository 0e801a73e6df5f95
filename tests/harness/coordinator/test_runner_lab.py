"""Boards that misbehave, met by the real runner and the real agent on real SSH servers.

``DeviceRunner`` drives a lab board directly (no Ray), as a board actor does: a link cut
mid-upload fails that job within its budget and drops the connection, and the next job
runs once the link is back; a cached artifact or agent truncated or damaged on the board is
sent again; two inventories that give one board two work directories still take turns on
it (its lease is the board's). The lab's boards share this machine's filesystem, so the
tests read and damage the board's files directly.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devices.agent import lease
from devices.agent.spec import MeasureSettings
from harness.config.inventory import Device
from harness.coordinator.bundle import build_agent
from harness.coordinator.files import FileRef
from harness.coordinator.lease import LeaseTerms
from harness.coordinator.runner import DeviceRunner, Payload
from harness.records import Job, JobResult, JobSettings
from harness.transport import sha256_file
from tests.sshlab import LabHost

TIMEOUT_S, GRACE_S = 3.0, 2.0  # a job's budget: 5 s for every network wait


class _HereStager:
    """The files are on this node already (the real Stager fetches them over Ray otherwise)."""

    fetched_bytes = 0

    def local(self, ref: FileRef) -> Path:
        return ref.path


@pytest.fixture
def host(ssh_lab) -> LabHost:  # noqa: ANN001
    h = ssh_lab(1)[0]
    h.start()
    return h


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> FileRef:
    return FileRef.of(build_agent(tmp_path_factory.mktemp("agent")))


def runner(host: LabHost, workdir: Path, agent: FileRef, owner: str = "lab-run", wait_s: float = 30) -> DeviceRunner:
    device = Device.model_validate(host.inventory_entry("lab", workdir, runtimes=["sleep"]))
    return DeviceRunner(device, agent, {}, _HereStager(), grace_s=GRACE_S,  # type: ignore[arg-type]
                        lease=LeaseTerms(owner=owner, ttl_s=20, wait_s=wait_s))


def job(min_s: float = 0.2) -> Job:
    measure = MeasureSettings(warmup_iters=2, warmup_s=0.0, min_iters=5, min_s=min_s, timeout_s=TIMEOUT_S, quiet=None)
    return Job("net", "fp32", "lab", "sleep", JobSettings(measure, {"latency_ms": 2}))


def model(tmp_path: Path, size: int, name: str = "model.onnx") -> Payload:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return Payload(FileRef.of(path), (1, 3), None, {})


def ok(result: JobResult) -> JobResult:
    assert result.status == "ok", result.error
    return result


def _holders(path: Path) -> list[int]:
    """The processes that have ``path`` open."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_a_link_cut_mid_upload_fails_that_job_within_its_budget_and_the_next_job_runs(
        host: LabHost, tmp_path: Path, agent: FileRef) -> None:
    host.link_up()  # skips, saying why, on a loopback lab
    workdir = tmp_path / "board"
    r = runner(host, workdir, agent)
    payload = model(tmp_path, 6 << 20)
    cache = workdir / "cache"
    shaped = subprocess.run(["tc", "qdisc", "add", "dev", host.veth, "root", "tbf", "rate", "8mbit", "burst", "32kb",
                             "latency", "400ms"], capture_output=True, text=True)  # ~1 MB/s: 6 s to upload
    if shaped.returncode != 0:
        pytest.skip(f"cannot slow the lab's link with tc: {shaped.stderr.strip()}")
    cut: list[float] = []

    def cut_mid_upload() -> None:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            partial = [p for p in cache.glob(f"{payload.artifact.sha256}.onnx.tmp-*") if p.stat().st_size > 256 << 10]
            if partial:
                host.link_down()
                cut.append(time.monotonic())
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=cut_mid_upload)
    watcher.start()
    try:
        failed = r.run_job(job(), "lab-1", payload)
        ended = time.monotonic()
        watcher.join()
    finally:
        host.link_up()
        subprocess.run(["tc", "qdisc", "del", "dev", host.veth, "root"], capture_output=True)
    try:
        assert cut, "the upload never started"
        assert failed.status == "failed" and failed.details["retryable"], failed.error
        assert "no progress for 5 s during upload of model.onnx" in failed.error, failed.error
        assert ended - cut[0] < TIMEOUT_S + GRACE_S + 3  # the budget, the watchdog's poll, the close
        assert not (cache / f"{payload.artifact.sha256}.onnx").exists()  # nothing torn under the cache name
        [partial] = cache.glob("*.tmp-*")  # left behind by the cut: the board's agent removes it once it is old
        end = time.monotonic() + 15  # the board's end of the cut session may write on until its TCP gives up
        while _holders(partial) and time.monotonic() < end:
            time.sleep(0.1)
        old = time.time() - 2 * 3600
        os.utime(partial, (old, old))

        again = ok(r.run_job(job(), "lab-2", payload))  # the link is back: reconnect, upload again, measure
        assert again.details["uploaded_bytes"] == 6 << 20 and "connect_s" in again.details
        assert sha256_file(cache / f"{payload.artifact.sha256}.onnx") == payload.artifact.sha256
        assert not list(cache.glob("*.tmp-*"))  # the agent server tidied the dead partial upload when it started
    finally:
        r.close()


@pytest.mark.parametrize("sftp", [True, False], ids=["sftp", "exec"])
def test_a_truncated_or_damaged_cached_file_is_sent_again(host: LabHost, tmp_path: Path, agent: FileRef,
                                                          sftp: bool) -> None:
    host.set_sftp(sftp)
    workdir = tmp_path / "board"
    payload = model(tmp_path, 300_000)
    r = runner(host, workdir, agent)
    try:
        first = ok(r.run_job(job(), "lab-1", payload))
        assert first.details["transfer"] == ("sftp" if sftp else "exec")
        assert first.details["uploaded_bytes"] == 300_000 + agent.path.stat().st_size
        cached = workdir / "cache" / f"{payload.artifact.sha256}.onnx"
        pyz = workdir / "cache" / f"{agent.sha256}.pyz"
        assert ok(r.run_job(job(), "lab-2", payload)).details["uploaded_bytes"] == 0  # both cached, whole

        with open(cached, "r+b") as f:  # a power loss on the board cut the file short
            f.truncate(1000)
        assert ok(r.run_job(job(), "lab-3", payload)).details["uploaded_bytes"] == 300_000
        assert sha256_file(cached) == payload.artifact.sha256

        data = bytearray(cached.read_bytes())  # same size, other bytes: only the sha256 tells
        data[1000] ^= 0xFF
        cached.write_bytes(bytes(data))
        with open(pyz, "r+b") as f:  # and the agent's zipapp cut short
            f.truncate(pyz.stat().st_size // 2)
        assert r.probe() is None  # a new connection: the content is checked once per connection
        repaired = ok(r.run_job(job(), "lab-4", payload))
        assert repaired.details["uploaded_bytes"] == 300_000 + agent.path.stat().st_size
        assert sha256_file(cached) == payload.artifact.sha256 and sha256_file(pyz) == agent.sha256
    finally:
        r.close()
        host.set_sftp(True)


def test_two_work_directories_on_one_board_share_its_lease(host: LabHost, tmp_path: Path, agent: FileRef) -> None:
    """Two inventories (two teams) name one board with two work directories: their jobs take turns."""
    a = runner(host, tmp_path / "team-a", agent, owner="run-a")
    b = runner(host, tmp_path / "team-b", agent, owner="run-b")
    payload = model(tmp_path, 1000)
    results: dict[str, JobResult] = {}
    try:
        for r in (a, b):
            r.warm()  # connected, agent servers up: the jobs below start at once
        first = threading.Thread(target=lambda: results.setdefault("a", a.run_job(job(min_s=2.0), "a-1", payload)))
        first.start()
        end = time.monotonic() + 20
        while (held := lease.show(str(host.lease_dir))) is None and time.monotonic() < end:
            time.sleep(0.02)
        assert held is not None and held["owner"] == "run-a"
        results["b"] = b.run_job(job(), "b-1", payload)
        first.join()
    finally:
        a.close()
        b.close()
    ra, rb = ok(results["a"]), ok(results["b"])
    assert rb.details["lease_wait_s"] > 0.5, rb.details  # b waited for a...
    assert rb.details["window"]["start_unix"] >= ra.details["window"]["end_unix"]  # ...and never measured with it
    assert lease.show(str(host.lease_dir)) is None  # both released the board's one lease
    for workdir in ("team-a", "team-b"):
        assert not (tmp_path / workdir / lease.STATE_FILE).exists() and not (tmp_path / workdir / lease.LOCK_FILE).exists()
