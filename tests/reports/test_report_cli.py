"""``harness report``: --history (a tag's dashboard), --budget-ms/--budget-mj, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from history_data import TAG, fill_store

from harness.cli import main
from reports.sections.trends import REGRESSION_LEGEND


def run(*args: str) -> int:
    return main(["report", *args])


def test_history_dashboard_default_path_and_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.db"
    runs = fill_store(db, 4, slow_from=2)
    assert run("--history", "--tag", TAG, "--store", str(db)) == 0
    path = tmp_path / "reports" / f"history-{TAG}.html"
    assert f"dashboard: {path}" in capsys.readouterr().out
    page = path.read_text(encoding="utf-8")
    assert f"Edge Harness dashboard: tag {TAG}, 4 run(s)" in page and f"latest run: <b>{runs[-1]}</b>" in page
    assert 'id="sec-trends"' in page and 'id="sec-changes"' in page and REGRESSION_LEGEND in page


def test_history_of_a_run_ends_at_that_run(tmp_path: Path) -> None:
    db, out = tmp_path / "h.db", tmp_path / "d.html"
    runs = fill_store(db, 4)
    assert run(runs[1], "--history", "--store", str(db), "-o", str(out)) == 0  # the tag comes from the run
    page = out.read_text(encoding="utf-8")
    assert "2 run(s)" in page and f"latest run: <b>{runs[1]}</b>" in page and runs[3] not in page


def test_budget_flags_and_suite_budget(tmp_path: Path) -> None:
    db, out = tmp_path / "h.db", tmp_path / "r.html"
    fill_store(db, 1, budget={"latency_budget_ms": 25.0})
    assert run("--store", str(db), "-o", str(out)) == 0
    page = out.read_text(encoding="utf-8")
    assert "p50 \u2264 25.0 ms (suite)" in page
    assert run("--store", str(db), "-o", str(out), "--budget-ms", "5", "--budget-mj", "100") == 0
    page = out.read_text(encoding="utf-8")
    assert "p50 \u2264 5.00 ms (command line)" in page and "\u2264 100 mJ (command line)" in page
    assert page.count("none fits") == 2  # both devices: the fastest job there takes 10 ms


def test_bad_input_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.db"
    untagged = fill_store(db, 1, tag=None)
    assert run(untagged[0], "--history", "--store", str(db)) == 2
    assert "has no tag" in capsys.readouterr().err
    assert run("--store", str(db), "--budget-ms", "-3") == 2
    assert "--budget-ms" in capsys.readouterr().err
    assert run("--store", str(db), "--budget-ms", "fast") == 2  # argparse: not a number
    fill_store(db, 1, tag="other")
    assert run(untagged[0], "--history", "--tag", "other", "--store", str(db)) == 2
    assert "does not have tag" in capsys.readouterr().err
