"""What a resume accepts, without Ray: model files matched by content, not path (a moved but
identical file matches, a changed one at the same path does not); a run another live sweep is
writing is refused by ``harness sweep --resume`` with exit 2 and one line."""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness.store
from harness.cli import main
from harness.config import Device, load_suite
from harness.coordinator import sweep
from harness.coordinator.sweep import _reopen, plan_config
from harness.errors import ConfigError
from harness.plan import make_plan

ROOT = Path(__file__).resolve().parents[3]
LOCAL = (Device(name="local", kind="local", runtimes=("onnxruntime", "litert")),)


def write_suite(folder: Path, model: str, kind: str = "onnx") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = (f"models: [{{name: net, onnx: {model}, input_shape: [1, 3, 8, 8]}}]\nvariants: [fp32]\n" if kind == "onnx"
            else f"models: [{{name: net, tflite: {model}}}]\nvariants: [tflite-as-is]\nruntimes: [litert]\n")
    path = folder / "suite.yaml"
    path.write_text(f"name: mine\n{body}")
    return path


def config_of(suite_file: Path) -> tuple[dict, list[str]]:
    suite = load_suite(suite_file)
    plan = make_plan(suite, LOCAL)
    return plan_config(suite, plan), [j.key for j in plan.jobs]


@pytest.mark.parametrize("kind,name", [("onnx", "net.onnx"), ("tflite", "net.tflite")])
def test_a_moved_identical_model_file_matches_and_a_changed_one_does_not(tmp_path: Path, kind: str, name: str) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / name).write_bytes(b"model bytes v1" * 100)
    config, keys = config_of(write_suite(a, name, kind))
    assert config["sources"] == {"net": {kind: hashlib.sha256(b"model bytes v1" * 100).hexdigest()}}
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="mine", config=config)

        b = tmp_path / "elsewhere" / "b"  # the file moved and renamed, the suite beside it
        b.mkdir(parents=True)
        shutil.move(a / name, b / f"renamed-{name}")
        moved, moved_keys = config_of(write_suite(b, f"renamed-{name}", kind))
        assert moved["suite"]["models"][0][kind] != config["suite"]["models"][0][kind]  # another path...
        assert _reopen(st, run, moved) == run and moved_keys == keys  # ... the same content: the same run and jobs

        (a / name).write_bytes(b"model bytes v2" * 100)  # the same path as planned, other content
        changed, _ = config_of(write_suite(a, name, kind))
        with pytest.raises(ConfigError, match=f"differ at suite.models.0.{kind}\\); resume it with the same files"):
            _reopen(st, run, changed)


def test_a_run_planned_before_files_were_hashed_still_resumes_by_path(tmp_path: Path) -> None:
    (tmp_path / "net.onnx").write_bytes(b"x" * 64)
    config, _ = config_of(write_suite(tmp_path, "net.onnx"))
    old = {k: v for k, v in config.items() if k != "sources"}  # what an older harness stored
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="mine", config=old)
        assert _reopen(st, run, config) == run
        moved = tmp_path / "m"
        moved.mkdir()
        shutil.copy(tmp_path / "net.onnx", moved / "net.onnx")
        other, _ = config_of(write_suite(moved, "net.onnx"))
        with pytest.raises(ConfigError, match="differ at suite.models.0.onnx"):  # no hashes stored: paths compared
            _reopen(st, run, other)


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal must come before Ray starts: fail at once instead of starting it."""
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the sweep went on to start Ray")

    monkeypatch.setattr(sweep, "ray_session", refuse)


def test_sweep_resume_refuses_a_run_a_live_sweep_writes(tmp_path: Path, no_ray: None, capsys) -> None:  # noqa: ANN001
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: mine\nmodels: [{builtin: digits-cnn}]\n")
    db = tmp_path / "h.db"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        import harness.store
        from harness.config import load_inventory, load_suite
        from harness.coordinator.sweep import plan_config
        from harness.plan import make_plan, select_devices
        suite = load_suite(Path({str(suite)!r}))
        plan = make_plan(suite, select_devices(load_inventory(None).resolved(), suite))
        st = harness.store.open({str(db)!r})
        print(st.create_run(suite="mine", config=plan_config(suite, plan)), flush=True)
        time.sleep(120)
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        run = writer.stdout.readline().strip()
        assert run
        assert main(["sweep", str(suite), "--store", str(db), "--resume", run, "--no-report", "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: run {run} is being written by pid {writer.pid} on host "
                              f"{platform.node()} since ") and "--force" in err and "\n" not in err
        assert main(["sweep", str(suite), "--store", str(db), "--force", "--no-report"]) == 2
        assert "--force takes over a run being resumed" in capsys.readouterr().err
        with harness.store.open(db) as st:
            assert st.writer(run).pid == writer.pid and len(st.runs()) == 1  # nothing taken, nothing created
    finally:
        writer.kill()
        writer.wait()
