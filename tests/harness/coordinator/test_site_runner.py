"""``SiteRunner`` without Ray: one object drives several boards, each on its own thread.

Fake runners stand in for ``DeviceRunner`` (the lab tests drive real ones): what is checked
here is the site's own contract. Calls of different boards run at once; the calls of one
board run one at a time, in the order they came; a runner that raises is its call's failed
result and is replaced, and one that hangs holds up its own board only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

from harness.config.inventory import Device
from harness.coordinator.site import SiteRunner
from harness.records import JobResult

BOARDS = ("b0", "b1", "b2", "b3")


class FakeRunner:
    """Records each call (board, what, thread, start, end); a job sleeps ``job_s``."""

    made: list[str] = []

    def __init__(self, device: Device, log: list, job_s: float = 0.3, behave: dict | None = None):
        self.name = device.name
        self.log = log
        self.job_s = job_s
        self.behave = behave if behave is not None else {}
        self.closed = False
        FakeRunner.made.append(self.name)

    def _record(self, what: str, start: float) -> None:
        self.log.append((self.name, what, threading.current_thread().name, start, time.monotonic()))

    def run_job(self, job: object, job_id: str, payload: object) -> JobResult:
        start = time.monotonic()
        action = self.behave.get(self.name)
        if action == "raise":
            raise RuntimeError(f"bug on {self.name}")
        if isinstance(action, threading.Event):
            action.wait(30)  # hangs until the test lets it go
        time.sleep(self.job_s)
        self._record(job_id, start)
        return JobResult("ok", details={"board": self.name})

    def warm(self) -> None:
        start = time.monotonic()
        time.sleep(0.05)
        self._record("warm", start)

    def probe(self) -> str | None:
        if self.behave.get(self.name) == "raise":
            raise ValueError("probe bug")
        return None

    def close(self) -> None:
        self.closed = True


def site(log: list, behave: dict | None = None, job_s: float = 0.3) -> SiteRunner:
    devices = tuple(Device.model_validate({"name": b, "kind": "local", "runtimes": ["sleep"]}) for b in BOARDS)
    s = SiteRunner("", devices, None, {}, None, 10.0)  # type: ignore[arg-type]
    s._make = lambda d: FakeRunner(d, log, job_s, behave)  # noqa: SLF001
    return s


PAYLOAD = SimpleNamespace(variant={"name": "fp32"})


def test_boards_of_one_site_run_at_once_each_on_its_own_thread() -> None:
    log: list = []
    s = site(log)

    async def go() -> list[JobResult]:
        return await asyncio.gather(*(s.run_job(b, None, f"job-{b}", PAYLOAD) for b in BOARDS))  # type: ignore[arg-type]

    t0 = time.monotonic()
    results = asyncio.run(go())
    elapsed = time.monotonic() - t0
    assert [r.status for r in results] == ["ok"] * 4
    assert elapsed < 0.3 * 2.5, elapsed  # four 0.3 s jobs at once, not one after another (1.2 s)
    threads = {board: thread for board, _, thread, _, _ in log}
    assert len(set(threads.values())) == 4 and all(f"board-{b}" in threads[b] for b in BOARDS)
    assert max(start for *_, start, _ in log) < min(end for *_, end in log)  # all four overlapped


def test_one_board_runs_its_calls_one_at_a_time_in_order() -> None:
    log: list = []
    s = site(log, job_s=0.05)

    async def go() -> None:
        calls = [s.warm("b0"), *(s.run_job("b0", None, f"job-{i}", PAYLOAD) for i in range(4))]  # type: ignore[arg-type]
        await asyncio.gather(*calls)

    asyncio.run(go())
    assert [what for _, what, *_ in log] == ["warm", "job-0", "job-1", "job-2", "job-3"]
    spans = [(start, end) for *_, start, end in log]
    assert all(prev_end <= start for (_, prev_end), (start, _) in zip(spans, spans[1:]))
    assert len({thread for _, _, thread, _, _ in log}) == 1


def test_a_raising_runner_fails_its_own_call_only_and_starts_afresh() -> None:
    log: list = []
    behave: dict = {"b1": "raise"}
    s = site(log, behave)
    FakeRunner.made.clear()

    async def go() -> list:
        return await asyncio.gather(*(s.run_job(b, None, f"job-{b}", PAYLOAD) for b in BOARDS),  # type: ignore[arg-type]
                                    s.probe("b1"))

    *results, probed = asyncio.run(go())
    by_board = dict(zip(BOARDS, results))
    assert by_board["b1"].status == "failed" and by_board["b1"].details["retryable"] is True
    assert "the runner of b1 raised RuntimeError: bug on b1" in by_board["b1"].error
    assert "RuntimeError" in by_board["b1"].details["error_full"] and by_board["b1"].variant == {"name": "fp32"}
    assert all(by_board[b].status == "ok" for b in ("b0", "b2", "b3"))
    assert "raised ValueError: probe bug" in probed
    # Each raise dropped the board's runner: the job's, then the probe's, each on a fresh one.
    assert FakeRunner.made.count("b1") == 2 and FakeRunner.made.count("b0") == 1
    behave.clear()
    assert asyncio.run(s.run_job("b1", None, "again", PAYLOAD)).status == "ok"  # type: ignore[arg-type]
    assert FakeRunner.made.count("b1") == 3


def test_a_hanging_board_holds_up_no_other_board() -> None:
    log: list = []
    stuck = threading.Event()
    s = site(log, {"b0": stuck}, job_s=0.1)

    async def go() -> tuple[list[JobResult], bool]:
        hung = asyncio.ensure_future(s.run_job("b0", None, "hung", PAYLOAD))  # type: ignore[arg-type]
        others = await asyncio.wait_for(asyncio.gather(
            *(s.run_job(b, None, f"{b}-{i}", PAYLOAD) for b in BOARDS[1:] for i in range(3))), 5)  # type: ignore[arg-type]
        was_done = hung.done()
        stuck.set()
        await hung
        return others, was_done

    others, hung_done = asyncio.run(go())
    assert [r.status for r in others] == ["ok"] * 9 and not hung_done


def test_boards_share_the_stager_and_a_file_two_boards_need_is_fetched_once(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import pickle

    import ray

    from harness.coordinator.files import FileRef, Stager

    monkeypatch.setattr(ray, "get_runtime_context", lambda: SimpleNamespace(get_node_id=lambda: "site-node"))
    fetches: list[str] = []

    def fetch(self: Stager, ref: FileRef, target) -> None:  # noqa: ANN001 - stands in for the Ray reads
        fetches.append(threading.current_thread().name)
        time.sleep(0.2)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"model")
        self.fetched_bytes += 5

    monkeypatch.setattr(Stager, "_fetch", fetch)
    shipped = pickle.loads(pickle.dumps(Stager(None, "home-node", str(tmp_path / "staged"))))  # as an actor gets it
    views = [shipped.for_board() for _ in range(4)]
    ref = FileRef(tmp_path / "m.onnx", "ab" * 32)
    paths: list = []
    threads = [threading.Thread(target=lambda v=v: paths.append(v.local(ref)), name=f"t{i}") for i, v in enumerate(views)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fetches) == 1 and len(set(paths)) == 1 and paths[0].read_bytes() == b"model"
    assert sorted(v.fetched_bytes for v in views) == [0, 0, 0, 5]  # counted for the board that fetched it


def test_quiet_scoring_silences_its_own_thread_only(capsys) -> None:  # noqa: ANN001
    import sys

    from harness.tasks.metrics import _quiet

    inside, go_on = threading.Event(), threading.Event()

    def scorer() -> None:
        with _quiet():
            print("pycocotools noise")
            inside.set()
            go_on.wait(5)
            print("more noise")

    t = threading.Thread(target=scorer)
    t.start()
    inside.wait(5)
    print("another board's line")  # while the scorer is quiet
    go_on.set()
    t.join()
    out = capsys.readouterr().out
    assert "another board's line" in out and "noise" not in out
    assert type(sys.stdout).__name__ != "_ThreadQuiet"  # put back once nobody is quiet


def test_a_site_warms_a_bounded_number_of_boards_at_once(monkeypatch) -> None:  # noqa: ANN001
    import harness.coordinator.site as site_module

    monkeypatch.setattr(site_module, "STARTS_AT_ONCE", 2)
    log: list = []
    s = site(log)

    async def go() -> None:
        await asyncio.gather(*(s.warm(b) for b in BOARDS))

    asyncio.run(go())
    spans = [(start, end) for *_, start, end in log]
    most = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert len(spans) == 4 and most == 2
