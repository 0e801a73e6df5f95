"""The coordinator's side of the board lease: the job line it sends, how it reads the agent's
lease events (log, board notes, the restart of the job's clock), and the progress line's notes."""

from __future__ import annotations

import json
import logging

import pytest

from harness.config.suite import LeaseSettings
from harness.coordinator.lease import RENEW_LINE, LeaseTerms, LeaseWatch, board_busy
from harness.coordinator.progress import SweepProgress
from harness.records import Job

HOLDER = {"owner": "20261123-043512-9f3a", "host": "nightly-1", "pid": 202, "job_id": "x-1", "started": 0.0,
          "expires": 60.0}


def line(**event: object) -> str:
    return json.dumps(event, separators=(",", ":"))


def test_the_job_line_carries_the_lease_terms() -> None:
    terms = LeaseTerms.of(LeaseSettings(ttl_s=20, wait_s=90), owner="run-1")
    req = json.loads(terms.job_line("/w/jobs/run-1-3.json", "run-1-3"))
    assert req == {"cmd": "job", "spec": "/w/jobs/run-1-3.json", "lease": {  # no dir: the board's own place
        "owner": "run-1", "host": terms.host, "pid": terms.pid, "ttl_s": 20, "wait_s": 90,
        "job_id": "run-1-3"}}
    sent: list[str] = []
    interval, beat = terms.heartbeat(sent.append)
    beat()
    assert interval == 5 and sent == [RENEW_LINE] and json.loads(RENEW_LINE) == {"cmd": "renew"}


def test_a_wait_is_noted_then_cleared_when_the_board_is_granted() -> None:
    notes: list[tuple[str, str | None]] = []
    watch = LeaseWatch("orin-01", lambda board, note: notes.append((board, note)))
    assert not watch.granted(line(event="facts", pid=1))
    assert not watch.granted(line(event="lease", state="waiting", holder=HOLDER))
    assert notes == [("orin-01", "waiting, held by 20261123-043512-9f3a@nightly-1 since 1970-01-01 00:00:00 UTC")]
    assert watch.granted(line(event="lease", state="granted"))
    assert notes[-1] == ("orin-01", None) and watch.waited_s is not None and watch.took_over is None
    watch.clear()  # nothing noted any more: nothing sent
    assert len(notes) == 2


def test_a_takeover_is_a_warning_naming_the_old_holder(caplog: pytest.LogCaptureFixture) -> None:
    notes: list[tuple[str, str | None]] = []
    watch = LeaseWatch("orin-01", lambda board, note: notes.append((board, note)))
    with caplog.at_level(logging.WARNING, logger="edge_harness.coordinator"):
        assert watch.granted(line(event="lease", state="taken_over", previous=HOLDER,
                                  reason="expired at 1970-01-01 00:01:00 UTC"))
    assert watch.took_over == "20261123-043512-9f3a@nightly-1 pid 202 (expired at 1970-01-01 00:01:00 UTC)"
    assert "lease of orin-01 taken over from 20261123-043512-9f3a@nightly-1 pid 202" in caplog.text
    assert notes == [] and watch.waited_s is None


def test_board_busy_is_the_agents_message() -> None:
    busy = "board busy: held by a@b pid 1 since x (waited 9 s)"
    events = [{"event": "lease", "state": "waiting"}, {"event": "error", "kind": "BoardBusy", "message": busy},
              {"event": "exit", "code": 1}]
    assert board_busy(events) == busy
    assert board_busy([{"event": "error", "kind": "MeasurementError", "message": "m"}]) is None


def test_progress_shows_a_boards_note_while_it_lasts(capsys: pytest.CaptureFixture[str]) -> None:
    progress = SweepProgress(total=2)
    job = Job("digits-cnn", "fp32", "lab", "sleep")
    progress.started(job, "board-0")
    progress.notes({"board-1": "waiting, held by r@h since t"})
    desc = progress._bar.tasks[0].description
    assert desc.startswith("measuring ") and desc.endswith("; board board-1: waiting, held by r@h since t")
    progress.notes({})  # nothing new: printed once only
    progress.notes({"board-1": None})
    assert progress._bar.tasks[0].description.startswith("measuring ") and "board-1" not in \
        progress._bar.tasks[0].description
    assert capsys.readouterr().err.count("board board-1: waiting, held by r@h since t") == 1
    quiet = SweepProgress(total=1, quiet=True)
    quiet.notes({"board-1": "waiting"})
    assert capsys.readouterr().err == ""
