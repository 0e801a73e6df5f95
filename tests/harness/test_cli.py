"""The command contract: exit codes and one-line messages, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import _guarded, main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120)


def test_bad_suite_is_exit_2_with_one_line(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels:\n  - builtin: digits-cnn\nruntimes: [onnxruntime, tflight]\n")
    proc = run_cli("sweep", str(suite), "--store", str(tmp_path / "h.db"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{suite}:4: runtimes" in lines[0] and "tflight" in lines[0]
    assert not (tmp_path / "h.db").exists()  # nothing started


def test_missing_files_and_unknown_runs_are_exit_2(tmp_path: Path) -> None:
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
    assert main(["report", "--store", str(tmp_path / "none.db")]) == 2
    assert main(["runs", "list", "--store", str(tmp_path / "none.db")]) == 2
    import harness.store

    harness.store.open(tmp_path / "h.db").close()
    assert main(["report", "deadbeef", "--store", str(tmp_path / "h.db")]) == 2


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_bug_is_exit_70_with_the_traceback_in_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_args: object) -> int:
        raise ZeroDivisionError("oops")

    assert _guarded(broken, None) == 70
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err
    log = Path(err.split("traceback in ")[1].split(")")[0])
    assert "ZeroDivisionError: oops" in log.read_text()
    log.unlink()


def test_runs_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import harness.store

    db = tmp_path / "h.db"
    with harness.store.open(db) as st:
        runs = [st.create_run(suite="s", config={}, tag="nightly") for _ in range(3)]
        for r in runs:
            st.finish_run(r, "ok")
    assert main(["runs", "prune", "--keep", "2", "--store", str(db)]) == 0
    assert "deleted 1 run(s)" in capsys.readouterr().out
    with harness.store.open(db) as st:
        assert len(st.runs()) == 2
    assert main(["runs", "prune", "--keep", "-1", "--store", str(db)]) == 2
