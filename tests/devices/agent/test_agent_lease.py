"""The board's lease (devices/agent/lease.py) on a real directory: one holder at a time,
renewal, expiry and takeover, a holder whose process is gone, tokens, breaking by hand,
and processes racing for it."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from devices.agent import lease

ME = {"owner": "run-a", "host": "ci-1", "pid": 101, "job_id": "run-a-1"}
OTHER = {"owner": "run-b", "host": "nightly", "pid": 202, "job_id": "run-b-7"}


def test_acquire_renew_release(tmp_path: Path) -> None:
    got = lease.try_acquire(str(tmp_path), ME, ttl_s=60)
    assert got.granted and got.previous is None and got.lease["owner"] == "run-a"
    assert got.lease["expires"] - got.lease["started"] == 60
    shown = lease.show(str(tmp_path))
    assert shown is not None and "token" not in shown and shown["job_id"] == "run-a-1"

    time.sleep(0.01)
    renewed = lease.renew(str(tmp_path), got.lease["token"], ttl_s=120)
    assert renewed is not None and renewed["renewed"] > got.lease["renewed"]
    assert renewed["expires"] - renewed["renewed"] == 120 and renewed["started"] == got.lease["started"]

    assert lease.release(str(tmp_path), got.lease["token"])
    assert lease.show(str(tmp_path)) is None
    assert lease.try_acquire(str(tmp_path), OTHER, ttl_s=60).granted  # free again


def test_a_held_lease_names_its_holder(tmp_path: Path) -> None:
    mine = lease.try_acquire(str(tmp_path), ME, ttl_s=60)
    theirs = lease.try_acquire(str(tmp_path), OTHER, ttl_s=60)
    assert not theirs.granted and theirs.previous is None
    assert theirs.lease["owner"] == "run-a" and "token" not in theirs.lease
    assert lease.holder_text(theirs.lease).startswith("run-a@ci-1 pid 101 since ")
    assert lease.renew(str(tmp_path), mine.lease["token"], 60) is not None


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_told(tmp_path: Path) -> None:
    old = lease.try_acquire(str(tmp_path), ME, ttl_s=0.05)
    time.sleep(0.1)
    assert lease.vacancy(lease.show(str(tmp_path)), time.time()).startswith("expired at ")
    new = lease.try_acquire(str(tmp_path), OTHER, ttl_s=60)
    assert new.granted and new.previous is not None and new.reason.startswith("expired at ")
    assert new.previous["owner"] == "run-a" and new.previous["expires"] < time.time() and "token" not in new.previous
    # The old holder can neither renew nor release its successor's lease.
    assert lease.renew(str(tmp_path), old.lease["token"], 60) is None
    assert not lease.release(str(tmp_path), old.lease["token"])
    assert lease.show(str(tmp_path))["owner"] == "run-b"


def test_release_with_a_wrong_token_does_nothing(tmp_path: Path) -> None:
    lease.try_acquire(str(tmp_path), ME, ttl_s=60)
    assert not lease.release(str(tmp_path), "not-the-token")
    assert lease.show(str(tmp_path))["owner"] == "run-a"
    assert not lease.release(str(tmp_path / "elsewhere"), "x")  # no lease at all: nothing to do


def test_break_frees_the_board_whoever_holds_it(tmp_path: Path) -> None:
    assert lease.break_lease(str(tmp_path)) is None  # free already
    held = lease.try_acquire(str(tmp_path), ME, ttl_s=60)
    broken = lease.break_lease(str(tmp_path))
    assert broken is not None and broken["owner"] == "run-a" and "token" not in broken
    assert lease.show(str(tmp_path)) is None
    assert lease.renew(str(tmp_path), held.lease["token"], 60) is None  # its holder has lost it


def test_a_file_that_is_not_a_lease_counts_as_free(tmp_path: Path) -> None:
    (tmp_path / lease.STATE_FILE).write_text("{not json")
    assert lease.show(str(tmp_path)) is None
    (tmp_path / lease.STATE_FILE).write_text(json.dumps({"owner": "x"}))
    assert lease.try_acquire(str(tmp_path), ME, ttl_s=60).granted


@pytest.mark.parametrize("edit", [
    {"started": "x"}, {"expires": float("nan")}, {"expires": float("inf")}, {"renewed": 1e300},
    {"ttl_s": True}, {"pid": "1"}, {"owner": None}, {"token": 5},
])  # fmt: skip
def test_a_hand_edited_lease_counts_as_free_and_breaks_nothing(tmp_path: Path, edit: dict) -> None:
    """NaN or Infinity would never expire; a text where a time belongs would crash whoever shows it."""
    lease.try_acquire(str(tmp_path), OTHER, ttl_s=600)
    state = json.loads((tmp_path / lease.STATE_FILE).read_text())
    (tmp_path / lease.STATE_FILE).write_text(json.dumps(dict(state, **edit)))  # Python writes NaN/Infinity
    assert lease.show(str(tmp_path)) is None
    assert lease.try_acquire(str(tmp_path), ME, ttl_s=60).granted


def test_utc_text_of_a_time_out_of_range_does_not_raise() -> None:
    assert lease.utc_text(1e300) == "an unreadable time" and lease.utc_text(0).startswith("1970-01-01")


def _take_and_die(lease_dir: str) -> None:
    lease.try_acquire(lease_dir, OTHER, ttl_s=600)
    os._exit(0)  # no release: like an agent server SIGKILLed with its coordinator


def test_a_lease_whose_agent_is_gone_is_free_at_once(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("fork").Process(target=_take_and_die, args=(str(tmp_path),))
    proc.start()
    proc.join(30)
    held = lease.show(str(tmp_path))
    assert held["agent"]["pid"] == proc.pid and held["expires"] > time.time() + 500
    got = lease.try_acquire(str(tmp_path), ME, ttl_s=60)
    assert got.granted and got.previous["owner"] == "run-b"
    assert got.reason == f"its agent (pid {proc.pid}) is gone"
    # A live agent (this process) holds on, whatever its age.
    assert not lease.try_acquire(str(tmp_path), OTHER, ttl_s=60).granted


def test_an_agent_this_board_cannot_see_is_not_taken_for_gone(tmp_path: Path) -> None:
    lease.try_acquire(str(tmp_path), OTHER, ttl_s=600)
    state = json.loads((tmp_path / lease.STATE_FILE).read_text())
    state["agent"] = dict(state["agent"], pid=999_999_999, pidns="pid:[1]")  # another container's process
    (tmp_path / lease.STATE_FILE).write_text(json.dumps(state))
    assert not lease.try_acquire(str(tmp_path), ME, ttl_s=60).granted


def _race(lease_dir: str, i: int, start: Any, done: Any, wins: Any) -> None:
    start.wait()
    got = lease.try_acquire(lease_dir, dict(ME, pid=i), ttl_s=60)
    wins.put((i, got.granted))
    done.wait(30)  # the winner's agent stays alive while the others try


def test_concurrent_acquirers_exactly_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        d = str(tmp_path / f"round{round_}")
        start, done, wins = ctx.Event(), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(d, i, start, done, wins)) for i in range(8)]
        for p in procs:
            p.start()
        start.set()
        outcomes = dict(wins.get(timeout=30) for _ in procs)
        done.set()
        for p in procs:
            p.join(30)
        winners = [i for i, won in outcomes.items() if won]
        assert len(winners) == 1, outcomes
        assert lease.show(d)["pid"] == winners[0]
