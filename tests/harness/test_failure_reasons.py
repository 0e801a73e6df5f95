"""A failure reads as one line of at most 300 characters wherever it is shown (terminal,
store, report); the whole text stays in the job's details; the terminal groups by reason."""

from __future__ import annotations

from pathlib import Path

import harness.store
from harness.cli import _grouped
from harness.records import MAX_REASON_CHARS, Job, JobResult

LONG = "ArtifactIncompatible: the model expects inputs " + str([f"input_{i}" for i in range(213)]) + " x" * 200


def test_a_long_or_multiline_reason_is_one_line_and_kept_whole_in_the_details(tmp_path: Path) -> None:
    r = JobResult("failed", LONG + "\nTraceback (most recent call last):\n  File ...")
    assert "\n" not in r.error and len(r.error) <= MAX_REASON_CHARS and r.error.endswith("...")
    assert "213 names: input_0, input_1, input_2, ..." in r.error  # a long list of names is summarized
    assert r.details["error_full"].startswith(LONG) and "Traceback" in r.details["error_full"]
    with harness.store.open(tmp_path / "h.db") as store:
        run = store.create_run(suite="s", config={})
        job = Job("m", "fp32", "local", "onnxruntime")
        store.record(store.add_jobs(run, [job])[job.key], r)
        df = store.results(run)
    assert df["error"].iloc[0] == r.error


def test_a_short_reason_is_left_as_it_is() -> None:
    r = JobResult.failed("MeasurementError: timed out", retryable=True)
    assert r.error == "MeasurementError: timed out" and "error_full" not in r.details


def test_the_terminal_groups_failures_by_reason_most_frequent_first() -> None:
    failed = [("a", "board down"), ("b", "bad graph"), ("c", "board down"), ("d", "board down")]
    assert _grouped(failed) == {"board down": ["a", "c", "d"], "bad graph": ["b"]}
