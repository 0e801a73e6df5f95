"""A sweep over power modes through the real CLI: Ray, the local transport, the agent zipapp on a
fake cpufreq tree (``EDGE_HARNESS_SYSFS_ROOT``), the store's ``power_mode`` column and the report.

Two modes the fake board takes (eco, perf) and one it refuses (a governor it does not offer): every
job is measured once per mode, the refused ones fail with the agent's one line, and the board is
left as it was."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

import harness.store
from harness.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devices" / "agent"))
import power_testlib as fake  # noqa: E402

pytestmark = pytest.mark.usefixtures("ray_local")

SUITE = """
name: power-modes
models:
  - builtin: digits-cnn
variants: [fp32]
runtimes: [onnxruntime]
power_modes:
  eco: {cpufreq: {governor: powersave, max_freq_khz: 1200000}}
  perf: {cpufreq: {governor: performance, min_freq_khz: 1510400}}
  vendor: {cpufreq: {governor: interactive}}
measure: {warmup_iters: 5, warmup_s: 0.1, min_iters: 50, min_s: 0.3, timeout_s: 120, quiet: null}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache) -> dict:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("power")
    root = fake.cpufreq_tree(tmp / "root")
    suite = tmp / "suite.yaml"
    suite.write_text(textwrap.dedent(SUITE).lstrip())
    inventory = tmp / "inventory.yaml"
    inventory.write_text(f"devices:\n  - {{name: local, kind: local, workdir: {tmp / 'board'}, "
                         "runtimes: [onnxruntime]}\n")
    cache_root = artifact_cache.root.parent
    (cache_root / "artifacts").mkdir(exist_ok=True)
    db, report = tmp / "h.db", tmp / "report.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGE_HARNESS_SYSFS_ROOT", str(root))  # the local agent's sysfs: the fake tree
        code = main(["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir",
                     str(cache_root), "--report", str(report), "-q"])
    return {"code": code, "db": db, "report": report, "root": root, "board": tmp / "board"}


def test_every_job_once_per_mode_and_the_refused_mode_fails(sweep: dict) -> None:
    assert sweep["code"] == 3  # the vendor mode's job failed
    with harness.store.open(sweep["db"]) as st:
        df = st.results()
    by_mode = {row.power_mode: row for row in df.itertuples()}
    assert sorted(by_mode) == ["eco", "perf", "vendor"]
    assert by_mode["eco"].status == by_mode["perf"].status == "ok"
    assert by_mode["vendor"].status == "failed"
    assert by_mode["vendor"].error.startswith("PowerModeError: governor 'interactive' is not offered by cpu0")


def test_what_was_read_back_is_stored_and_the_board_restored(sweep: dict) -> None:
    with harness.store.open(sweep["db"]) as st:
        df = st.results()
    rows = sqlite3.connect(sweep["db"]).execute(
        "SELECT j.power_mode, r.details_json, r.facts_json FROM jobs j JOIN results r ON r.job_id = j.id"
        " WHERE j.power_mode IN ('eco', 'perf')").fetchall()
    applied = {mode: json.loads(details)["power_mode"]["applied"]["cpufreq"] for mode, details, _ in rows}
    assert applied["eco"]["governor"] == "powersave" and applied["eco"]["max_freq_khz"] == 1200000
    assert applied["perf"]["governor"] == "performance" and applied["perf"]["min_freq_khz"] == 1510400
    assert all(json.loads(facts)["power_mode"]["name"] == mode for mode, _, facts in rows)
    assert all(json.loads(details)["power_mode"]["restored"] for _, details, _ in rows)
    assert fake.state(sweep["root"]) == [("schedutil", fake.CPUINFO[0], fake.CPUINFO[1])] * 4
    assert not (sweep["board"] / "power-restore.json").exists()
    assert set(df.point.dropna()) >= {"eco", "perf"}


def test_the_report_shows_the_modes(sweep: dict) -> None:
    html = sweep["report"].read_text()
    assert "Power mode" in html and "fp32 @ eco" in html and "fp32 @ perf" in html
