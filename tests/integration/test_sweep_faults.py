"""Real faults under a real sweep: boards of one pool over the SSH lab, the agent timing the
``sleep`` runtime, an sshd SIGKILLed or a link taken down while a job runs on it.

What must hold: the job completes on another board of the pool, a board that keeps failing
is marked down and re-probed, a sweep whose boards are all gone ends (exit 3) with every
job stored as failed with the reason, and nothing is measured twice.
"""

from __future__ import annotations

import json
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
                faults: str = "{}", variants: list[str] = VARIANTS) -> tuple[Path, Path]:
    devices = [
        h.inventory_entry(f"board-{i}", tmp / f"board-{i}", pool="lab", runtimes=["sleep"])
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


def when_running(tmp: Path, n_boards: int, act: Callable[[str], None], after_s: float) -> threading.Thread:
    """Once a board has a job's spec (the agent is starting; the lab shares this filesystem),
    wait ``after_s`` more, into the timed window, and act on that board."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for i in range(n_boards):
                if list((tmp / f"board-{i}" / "jobs").glob("*.json")):
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
