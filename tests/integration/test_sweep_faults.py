"""Real faults under a real sweep: boards of one pool over the SSH lab, the agent timing the
``sleep`` runtime, an sshd SIGKILLed or a link taken down while a job runs on it.

What must hold: the job completes on another board of the pool, a board that keeps failing
is marked down and re-probed, a sweep whose boards are all gone ends (exit 3) with every
job stored as failed with the reason, and nothing is measured twice.

Every board of the coordinator's node is driven by one site actor, a thread per board: the
boards measure at once, a board that hangs or fails holds up no other, and a site actor
killed mid-sweep is started again and the sweep completes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import harness.store
from harness.cli import main
from tests.sshlab import LabHost

pytestmark = pytest.mark.usefixtures("ray_local")

VARIANTS = ["fp32", "int8-dynamic"]


def write_sweep(tmp: Path, hosts: list[LabHost], *, min_s: float = 3.0, timeout_s: float = 60,
                faults: str = "{}", variants: list[str] = VARIANTS, pool: str | None = "lab",
                python: dict[int, str] | None = None) -> tuple[Path, Path]:
    """``pool=None``: every board its own target (each runs every job); ``python``: board
    index -> the interpreter its inventory names (a broken board)."""
    devices = [
        h.inventory_entry(f"board-{i}", tmp / f"board-{i}", runtimes=["sleep"], **({"pool": pool} if pool else {}),
                          **({"python": python[i]} if i in (python or {}) else {}))
        for i, h in enumerate(hosts)
    ]  # fmt: skip
    inventory = tmp / "inventory.yaml"
    inventory.write_text(json.dumps({"devices": devices}))
    suite = tmp / "suite.yaml"
    suite.write_text(
        f"name: faults\nmodels: [{{builtin: digits-cnn}}]\nvariants: {json.dumps(variants)}\nruntimes: [sleep]\n"
        f"runtime_options: {{sleep: {{latency_ms: 2}}}}\nretries: 2\nfaults: {faults}\n"
        f"measure: {{warmup_iters: 2, warmup_s: 0.0, min_iters: 10, min_s: {min_s}, timeout_s: {timeout_s}, "
        f"quiet: null}}\n"
    )
    return suite, inventory


def sweep(tmp: Path, suite: Path, inventory: Path, cache: Path) -> int:
    return main(["sweep", str(suite), "--inventory", str(inventory), "--store", str(tmp / "h.db"),
                 "--cache-dir", str(cache), "--no-report", "-q"])  # fmt: skip


def when_running(tmp: Path, n_boards: int, act: Callable[[str], None], after_s: float, nth: int = 1,
                 boards: tuple[int, ...] | None = None) -> threading.Thread:
    """Once a board (of ``boards``, default any) has the spec of its ``nth`` job (the agent is
    starting; the lab shares this filesystem), wait ``after_s`` more, into the timed window,
    and act on that board."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for i in range(n_boards) if boards is None else boards:
                if len(list((tmp / f"board-{i}" / "jobs").glob("*.json"))) >= nth:
                    time.sleep(after_s)
                    act(f"board-{i}")
                    return
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def results(tmp: Path):  # noqa: ANN201
    with harness.store.open(tmp / "h.db") as st:
        run = st.resolve_run()
        return st.results(run=run), st.run_info(run)


@pytest.fixture
def cache(artifact_cache) -> Path:  # noqa: ANN001
    root = artifact_cache.root.parent  # the session's trained digits CNN and its variants
    (root / "artifacts").mkdir(exist_ok=True)
    return root


def test_sshd_killed_mid_job_the_job_completes_on_another_board(ssh_lab, tmp_path: Path, cache: Path) -> None:  # noqa: ANN001
    hosts = ssh_lab(2)
    for h in hosts:
        h.start()
    suite, inventory = write_sweep(tmp_path, hosts, faults="{down_after: 1, reprobe_s: 0.5, reprobe_max: 2}")
    killed: list[str] = []

    def crash(board: str) -> None:
        killed.append(board)
        hosts[int(board.rsplit("-", 1)[1])].kill_all()

    watcher = when_running(tmp_path, len(hosts), crash, after_s=1.0)
    try:
        code = sweep(tmp_path, suite, inventory, cache)
    finally:
        watcher.join(5)
        for h in hosts:
            h.start()
    assert killed, "the fault was never injected"
    df, info = results(tmp_path)
    assert code == 0, df[["variant", "board", "status", "error"]]
    assert len(df) == len(VARIANTS) and set(df.status) == {"ok"} and set(df.device) == {"lab"}
    moved = df[df.attempts > 1]
    assert len(moved) == 1 and moved.iloc[0].board != killed[0]  # it finished elsewhere
    assert set(df.board) == {"board-0", "board-1"} - set(killed)
    # The killed board went down, its re-probes failed, and the run says so.
    assert list(info["down"]) == killed and "Error" in info["down"][killed[0]]


def test_link_down_mid_job_times_out_and_the_job_is_retried_elsewhere(ssh_lab, tmp_path: Path,
                                                                      cache: Path) -> None:  # noqa: ANN001
    hosts = ssh_lab(2)
    for h in hosts:
        h.start()
        h.link_up()  # skips, saying why, on a loopback lab
    suite, inventory = write_sweep(tmp_path, hosts, min_s=2.0, timeout_s=6,
                                   faults="{grace_s: 2, down_after: 1, reprobe_s: 60}")
    cut: list[str] = []

    def cut_link(board: str) -> None:
        cut.append(board)
        hosts[int(board.rsplit("-", 1)[1])].link_down()

    watcher = when_running(tmp_path, len(hosts), cut_link, after_s=1.0)
    start = time.monotonic()
    try:
        code = sweep(tmp_path, suite, inventory, cache)
    finally:
        watcher.join(5)
        for h in hosts:
            h.link_up()
    elapsed = time.monotonic() - start
    assert cut, "the fault was never injected"
    df, info = results(tmp_path)
    assert code == 0, df[["variant", "board", "status", "error"]]
    assert set(df.status) == {"ok"} and set(df.board) == {"board-0", "board-1"} - set(cut)
    assert df.attempts.max() == 2
    # timeout 6 s + grace 2 s + the bounded kill attempt: the cut link cost seconds, not minutes
    assert elapsed < 90
    assert list(info["down"]) == cut and "timed out" in info["down"][cut[0]]


def test_a_pool_whose_boards_are_all_gone_ends_with_every_job_failed(ssh_lab, tmp_path: Path, cache: Path) -> None:  # noqa: ANN001
    host = ssh_lab(3)[2]
    host.kill_all()  # the board is off before the sweep starts
    suite, inventory = write_sweep(tmp_path, [host], min_s=0.2,
                                   faults="{down_after: 1, reprobe_s: 0.2, reprobe_max: 2}")
    try:
        start = time.monotonic()
        code = sweep(tmp_path, suite, inventory, cache)
        elapsed = time.monotonic() - start
    finally:
        host.start()
    df, info = results(tmp_path)
    assert code == 3 and elapsed < 120
    assert len(df) == len(VARIANTS) and set(df.status) == {"failed"}
    assert df.error.str.contains("board-0").all()
    assert df.error.str.contains("no board left to run it|ConnectError").all()
    assert set(info["down"]) == {"board-0"}


def test_a_pool_spreads_its_jobs_over_its_boards(ssh_lab, tmp_path: Path, cache: Path) -> None:  # noqa: ANN001
    hosts = ssh_lab(3)
    for h in hosts:
        h.start()
    variants = ["fp32", "int8-dynamic", "fp16"]
    suite, inventory = write_sweep(tmp_path, hosts, min_s=1.5, variants=variants)
    assert sweep(tmp_path, suite, inventory, cache) == 0
    df, info = results(tmp_path)
    assert len(df) == 3 and set(df.status) == {"ok"} and set(df.device) == {"lab"}
    assert df.board.nunique() >= 2, df[["variant", "board"]]  # three free boards, three jobs: not one board
    assert (df.attempts == 1).all() and info["down"] == {}


def stored(tmp: Path) -> dict[str, list[dict]]:
    """Board -> its jobs as stored: status, error, attempts, and the result's details."""
    out: dict[str, list[dict]] = {}
    with sqlite3.connect(tmp / "h.db") as c:
        for device, status, error, attempts, finished, details in c.execute(
                "SELECT j.device, j.status, j.error, j.attempts, j.finished, r.details_json"
                " FROM jobs j LEFT JOIN results r ON r.job_id = j.id"):
            out.setdefault(device, []).append({"status": status, "error": error, "attempts": attempts,
                                               "finished": finished, "details": json.loads(details or "{}")})
    return out


def site_actor_pids() -> list[int]:
    """The processes of the SiteRunner actors alive now (Ray titles an actor's process ``ray::Class``)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes().startswith(b"ray::SiteRunner"):
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def test_one_site_actor_measures_on_its_boards_at_once(ssh_lab, tmp_path: Path, cache: Path) -> None:  # noqa: ANN001
    hosts = ssh_lab(4)
    for h in hosts:
        h.start()
    suite, inventory = write_sweep(tmp_path, hosts, min_s=2.0, variants=["fp32"], pool=None)
    assert sweep(tmp_path, suite, inventory, cache) == 0
    jobs = stored(tmp_path)
    assert sorted(jobs) == [f"board-{i}" for i in range(4)] and all(j[0]["status"] == "ok" for j in jobs.values())
    details = [j[0]["details"] for j in jobs.values()]
    # One actor, on the coordinator's node, drove the four boards...
    assert len({d["ray_actor"] for d in details}) == 1 and len({d["ray_node"] for d in details}) == 1
    # ...and their timed windows (each board's own clock: this machine's) overlapped: all four at once.
    windows = [(d["window"]["start_unix"], d["window"]["end_unix"]) for d in details]
    assert all(end - start >= 2.0 for start, end in windows)
    assert max(start for start, _ in windows) < min(end for _, end in windows), windows


def test_a_board_that_hangs_or_fails_holds_up_no_other_board_of_its_actor(ssh_lab, tmp_path: Path, cache: Path,
                                                                         caplog) -> None:  # noqa: ANN001
    hosts = ssh_lab(4)
    for h in hosts:
        h.start()
        h.link_up()  # skips, saying why, on a loopback lab
    # board-0's link goes down in its first job (it hangs until its budget); board-3's agent cannot start at all.
    suite, inventory = write_sweep(tmp_path, hosts, min_s=1.0, timeout_s=6, pool=None, python={3: "/bin/false"},
                                   faults="{grace_s: 2, down_after: 1, reprobe_s: 0.5, reprobe_max: 1}")
    cut: list[str] = []
    cut_at: list[float] = []

    def cut_link(board: str) -> None:
        cut.append(board)
        hosts[int(board.rsplit("-", 1)[1])].link_down()
        cut_at.append(time.time())

    watcher = when_running(tmp_path, len(hosts), cut_link, after_s=0.3, boards=(0,))
    try:
        code = sweep(tmp_path, suite, inventory, cache)
    finally:
        watcher.join(5)
        for h in hosts:
            h.link_up()
    assert cut == ["board-0"], "the fault was never injected"
    jobs = stored(tmp_path)
    _, info = results(tmp_path)
    assert code == 3
    hung, broken = jobs["board-0"], jobs["board-3"]
    assert all(j["status"] == "failed" for j in hung + broken)
    assert list(info["down"]) == ["board-0"]  # its job timed out, then its re-probe failed
    assert "board-0 is down after 1 failures in a row: CommandTimeout" in caplog.text
    assert all("could not start" in (j["error"] or "") for j in broken), broken
    # The other two boards of the same actor measured every job, once each, while board-0 hung
    # (its job's budget, 6 s, ran from before the cut).
    for board in ("board-1", "board-2"):
        assert [(j["status"], j["attempts"]) for j in jobs[board]] == [("ok", 1)] * len(VARIANTS), jobs[board]
        assert all(j["details"]["window"]["end_unix"] < cut_at[0] + 6 for j in jobs[board]), (cut_at, jobs[board])
    actors = {j["details"]["ray_actor"] for board in ("board-1", "board-2", "board-3") for j in jobs[board]}
    actors |= {j["details"]["ray_actor"] for j in hung if "ray_actor" in j["details"]}
    assert len(actors) == 1  # all on one site actor, never restarted


def test_a_site_actor_killed_mid_sweep_is_started_again_and_the_sweep_completes(ssh_lab, tmp_path: Path, cache: Path,
                                                                                caplog) -> None:  # noqa: ANN001
    hosts = ssh_lab(2)
    for h in hosts:
        h.start()
    variants = ["fp32", "int8-dynamic", "fp16"]
    suite, inventory = write_sweep(tmp_path, hosts, min_s=1.5, variants=variants, pool=None)
    killed: list[int] = []

    def kill_site(board: str) -> None:  # in a board's second job: the first ones are stored by the first actor
        killed.extend(site_actor_pids())
        for pid in killed:
            os.kill(pid, signal.SIGKILL)

    watcher = when_running(tmp_path, len(hosts), kill_site, after_s=0.5, nth=2)
    code = sweep(tmp_path, suite, inventory, cache)
    watcher.join(5)
    assert killed, "the fault was never injected"
    jobs = stored(tmp_path)
    assert code == 0, jobs
    every = [j for board in jobs.values() for j in board]
    assert len(every) == 6 and all(j["status"] == "ok" for j in every)
    assert any(j["attempts"] > 1 for j in every)  # the jobs the dead actor was running ran again
    # Jobs before the kill carry the first actor's id, the rest the second's: started again once,
    # however many of its calls failed with it.
    assert len({j["details"]["ray_actor"] for j in every}) == 2
    assert caplog.text.count("the actor of the coordinator's node died") == 1
