"""Power modes on the coordinator's side: the suite's and the inventory's ``power_modes``
(validation with file:line), the plan's axis (one job per mode, definitions per board, pools,
unknown modes), the job's identity, the spec ``make_spec`` sends, the result's details and
facts, the store's ``power_mode`` column, and the report's column, labels and hover."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from devices.agent.spec import Artifact, CpufreqMode, PowerMode, parse_spec
from harness.config import load_inventory, load_suite
from harness.coordinator.protocol import encode_spec, job_output, make_spec, result_from_events
from harness.errors import ConfigError
from harness.plan import make_plan
from harness.records import Job, JobResult, JobSettings
from harness.store import Store

SUITE = """
name: s
models:
  - builtin: digits-cnn
variants: [fp32]
runtimes: [onnxruntime]
"""
INVENTORY = """
defaults:
  power_modes:
    nv15w: {nvpmodel: 2}
devices:
  - name: orin-01
    kind: jetson
    host: 10.0.0.21
    runtimes: [onnxruntime]
    power_modes:
      nv15w: {nvpmodel: 2, jetson_clocks: true}
      maxn: {nvpmodel: 0, settle_s: 3}
  - name: orin-02
    kind: jetson
    host: 10.0.0.22
    runtimes: [onnxruntime]
  - name: pi5-01
    kind: pi
    host: pi5-01.lab
    runtimes: [onnxruntime]
    power_modes: {}
"""
ECO = {"cpufreq": {"governor": "powersave", "max_freq_khz": 1200000}}


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def error_of(loader, path: Path) -> ConfigError:  # noqa: ANN001
    with pytest.raises(ConfigError) as exc:
        loader(path)
    return exc.value


# -- config files -----------------------------------------------------------------------------


def test_suite_and_inventory_definitions_load(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, SUITE + f"power_modes:\n  eco: {json.dumps(ECO)}\n  nv15w: null\n", "s.yaml"))
    assert list(suite.power_modes) == ["eco", "nv15w"] and suite.power_modes["nv15w"] is None
    assert suite.power_modes["eco"].to_wire("eco") == PowerMode("eco", CpufreqMode("powersave", None, 1200000))
    assert load_suite(write(tmp_path, SUITE + "power_modes: [nv15w, maxn]\n", "l.yaml")).power_modes == ("nv15w", "maxn")
    devices = {d.name: d for d in load_inventory(write(tmp_path, INVENTORY, "inv.yaml")).resolved()}
    assert devices["orin-01"].power_modes["nv15w"].jetson_clocks is True  # its own, not the defaults'
    assert devices["orin-02"].power_modes["nv15w"].to_wire("nv15w") == PowerMode("nv15w", nvpmodel=2)  # defaults'
    assert devices["pi5-01"].power_modes == {}


@pytest.mark.parametrize(("modes", "line", "field", "words"), [
    ("power_modes:\n  eco: {cpufreq: {governor: powersafe}}\n", 7, "power_modes.eco.cpufreq.governor",
     "Input should be 'performance', 'powersave'"),
    ("power_modes:\n  eco:\n    cpufreq: {max_freq_khz: 0}\n", 8, "power_modes.eco.cpufreq.max_freq_khz",
     "greater than 0"),
    ("power_modes:\n  eco:\n    cpufreq: {min_freq_khz: -5}\n", 8, "power_modes.eco.cpufreq.min_freq_khz",
     "greater than 0"),
    ("power_modes:\n  eco: {cpufreq: {min_freq_khz: 9, max_freq_khz: 8}}\n", 7, "power_modes.eco.cpufreq",
     "min_freq_khz 9 is above max_freq_khz 8"),
    ("power_modes:\n  eco: {settle_s: 1}\n", 7, "power_modes.eco", "a power mode sets nothing"),
    ("power_modes:\n  eco: {cpufreq: {}}\n", 7, "power_modes.eco.cpufreq", "cpufreq sets nothing"),
    ("power_modes:\n  eco: {nvpmodel: -1}\n", 7, "power_modes.eco.nvpmodel", "greater than or equal to 0"),
    ("power_modes:\n  eco: {turbo: true}\n", 7, "power_modes.eco.turbo", "unknown key 'turbo'"),
    ("power_modes: [eco, eco]\n", 6, "power_modes", "power mode 'eco' is listed twice"),
    ("power_modes: []\n", 6, "power_modes", "at least 1 item"),
    ("power_modes: ['a b']\n", 6, "power_modes.0", "should match pattern"),
])
def test_suite_power_mode_errors_name_file_line_and_key(tmp_path: Path, modes: str, line: int, field: str,
                                                        words: str) -> None:
    path = write(tmp_path, SUITE + modes, "s.yaml")
    err = error_of(load_suite, path)
    assert err.location == f"{path}:{line}" and err.field == field and words in err.reason, str(err)


def test_inventory_power_mode_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, INVENTORY.replace("maxn: {nvpmodel: 0, settle_s: 3}",
                                             "maxn: {cpufreq: {governor: fast}}"), "inv.yaml")
    err = error_of(load_inventory, path)
    assert err.location == f"{path}:11" and err.field == "devices.0.power_modes.maxn.cpufreq.governor"


def test_a_bad_governor_is_exit_2_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from harness.cli import main

    path = write(tmp_path, SUITE + "power_modes:\n  eco: {cpufreq: {governor: turbo}}\n", "s.yaml")
    assert main(["sweep", str(path), "--store", str(tmp_path / "h.db")]) == 2
    assert f"{path}:7" in " ".join(capsys.readouterr().err.split())


def test_an_unknown_mode_is_exit_2_with_its_line_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    import harness.coordinator.sweep as sweep
    from harness.cli import main

    def no_ray(*args: object) -> None:
        raise AssertionError("the sweep went on to start Ray")

    monkeypatch.setattr(sweep, "ray_session", no_ray)
    path = write(tmp_path, SUITE + "power_modes: [nv15w, turbo]\n", "s.yaml")
    inventory = write(tmp_path, INVENTORY, "inv.yaml")
    assert main(["sweep", str(path), "--inventory", str(inventory), "--store", str(tmp_path / "h.db")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}:6: power_modes.1: unknown power mode 'turbo'" in err


# -- the plan ---------------------------------------------------------------------------------


def plan_of(tmp_path: Path, modes: str, inventory: str = INVENTORY, names: tuple[str, ...] = ()):  # noqa: ANN201
    suite_path = write(tmp_path, SUITE + modes, "s.yaml")
    devices = load_inventory(write(tmp_path, inventory, "inv.yaml")).resolved()
    devices = tuple(d for d in devices if not names or d.name in names)
    return make_plan(load_suite(suite_path), devices, str(suite_path)), suite_path


def test_each_job_once_per_mode_with_each_boards_definition(tmp_path: Path) -> None:
    plan, _ = plan_of(tmp_path, f"power_modes:\n  eco: {json.dumps(ECO)}\n  nv15w: null\n")
    got = [(j.device, j.settings.power_mode) for j in plan.jobs]
    eco = PowerMode("eco", CpufreqMode("powersave", None, 1200000))
    assert got == [("orin-01", eco), ("orin-01", PowerMode("nv15w", nvpmodel=2, jetson_clocks=True)),
                   ("orin-02", eco), ("orin-02", PowerMode("nv15w", nvpmodel=2)), ("pi5-01", eco)]
    assert "pi5-01 defines no power mode 'nv15w' (inventory: power_modes)" in plan.skipped
    assert plan.jobs[1].label() == "digits-cnn [fp32] on orin-01/onnxruntime @ nv15w"


def test_a_suites_definition_is_used_on_every_board(tmp_path: Path) -> None:
    plan, _ = plan_of(tmp_path, "power_modes:\n  nv15w: {nvpmodel: 1}\n")
    assert {j.settings.power_mode for j in plan.jobs} == {PowerMode("nv15w", nvpmodel=1)} and len(plan.jobs) == 3


def test_an_unknown_mode_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        plan_of(tmp_path, "power_modes: [nv15w, turbo]\n")
    path = tmp_path / "s.yaml"
    assert exc.value.location == f"{path}:6" and exc.value.field == "power_modes.1"
    assert "unknown power mode 'turbo'" in exc.value.reason and "(they define: maxn, nv15w)" in exc.value.reason
    with pytest.raises(ConfigError, match="unknown power mode 'maxn'") as exc:
        plan_of(tmp_path, "power_modes:\n  eco: {nvpmodel: 1}\n  maxn: null\n", names=("orin-02", "pi5-01"))
    assert exc.value.location == f"{path}:8"


def test_a_pools_boards_must_agree_on_a_mode(tmp_path: Path) -> None:
    pooled = INVENTORY.replace("    runtimes: [onnxruntime]\n    power_modes:\n      nv15w",
                               "    runtimes: [onnxruntime]\n    pool: orins\n    power_modes:\n      nv15w")
    pooled = pooled.replace("    host: 10.0.0.22\n", "    host: 10.0.0.22\n    pool: orins\n")
    with pytest.raises(ConfigError, match="the boards of pool 'orins' define power mode 'nv15w' differently"):
        plan_of(tmp_path, "power_modes: [nv15w]\n", pooled)
    plan, _ = plan_of(tmp_path, "power_modes: [maxn]\n", pooled)  # only orin-01 defines it: the pool's
    assert [(j.device, j.settings.power_mode.name) for j in plan.jobs] == [("orins", "maxn")]


def test_no_axis_plans_as_before(tmp_path: Path) -> None:
    plan, _ = plan_of(tmp_path, "")
    assert [j.settings.power_mode for j in plan.jobs] == [None] * 3


# -- identity ---------------------------------------------------------------------------------


def test_identity_holds_a_mode_only_when_set() -> None:
    plain = Job("m", "fp32", "orin-01", "onnxruntime", JobSettings())
    assert "power_mode" not in plain.settings.identity()
    eco = replace(plain, settings=replace(plain.settings, power_mode=PowerMode("eco", CpufreqMode("powersave"))))
    other = replace(plain, settings=replace(plain.settings, power_mode=PowerMode("eco", CpufreqMode("performance"))))
    assert len({plain.key, eco.key, other.key}) == 3  # the definition is part of the identity
    assert eco.key == replace(eco).key and plain.key == replace(plain, settings=replace(plain.settings)).key
    stored = json.loads(json.dumps(eco.settings.identity()))
    assert stored["power_mode"]["name"] == "eco"
    assert JobSettings.from_identity(stored) == eco.settings
    assert JobSettings.from_identity(json.loads(json.dumps(plain.settings.identity()))).power_mode is None


# -- the wire and the result ------------------------------------------------------------------


def test_make_spec_sends_the_mode_and_the_result_keeps_what_was_read_back() -> None:
    mode = PowerMode("nv15w", nvpmodel=2, jetson_clocks=True, settle_s=0.5)
    job = Job("m", "fp32", "orin-01", "onnxruntime", JobSettings(power_mode=mode))
    spec = parse_spec(json.loads(encode_spec(make_spec(job, "j1", Artifact("/c/a.onnx"), (1, 3, 8, 8), None))))
    assert spec.power_mode == mode
    plain = json.loads(encode_spec(make_spec(Job("m", "fp32", "d", "onnxruntime"), "j", Artifact("/a"), (1,), None)))
    assert "power_mode" not in plain
    record = {"name": "nv15w", "requested": {"nvpmodel": 2}, "before": {"nvpmodel": {"mode": "MAXN", "id": 0}},
              "applied": {"nvpmodel": {"mode": "15W", "id": 2}}, "settle_s": 0.5, "restored": True,
              "restore_error": None}
    events = [{"event": "facts", "python": "3.8"},
              {"event": "result", "job_id": "j1", "latency": {"p50_ms": 1.0, "n": 3}, "samples_ns": [1, 2, 3],
               "power_mode": record}]
    res = result_from_events(events, 0, "")
    assert res.status == "ok" and res.details["power_mode"] == record
    assert res.facts == {"python": "3.8", "power_mode": {"name": "nv15w", "applied": record["applied"]}}
    failed = result_from_events([{"event": "error", "kind": "PowerModeError", "message": "no cpufreq on this board"}],
                                1, "")
    assert failed.error == "PowerModeError: no cpufreq on this board"
    bad = job_output([dict(events[1], power_mode="eco"), {"event": "exit", "code": 0}], "")
    assert bad.error == "malformed agent output: result.power_mode must be an object or null, got str 'eco'"


# -- the store --------------------------------------------------------------------------------


def test_store_results_have_the_power_mode(tmp_path: Path) -> None:
    mode = PowerMode("eco", CpufreqMode("powersave"))
    jobs = [Job("m", "fp32", "orin-01", "onnxruntime", JobSettings(power_mode=mode)),
            Job("m", "fp32", "orin-01", "onnxruntime")]
    with Store(tmp_path / "h.db") as store:
        run = store.create_run(suite="s", config={})
        ids = store.add_jobs(run, jobs)
        for job in jobs:
            store.record(ids[job.key], JobResult("ok", metrics={"p50_ms": 1.0}))
        df = store.results(run)
        modes = df.set_index("job_id").loc[[ids[j.key] for j in jobs], "power_mode"].tolist()
        assert modes[0] == "eco" and pd.isna(modes[1])
        assert [j.settings.power_mode for _, j, _ in store.jobs(run)] == [mode, None]
    conn = sqlite3.connect(tmp_path / "h.db")
    assert conn.execute("SELECT power_mode FROM jobs ORDER BY id").fetchall() == [("eco",), (None,)]


def test_a_store_from_before_power_modes_reads_null(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as store:
        run = store.create_run(suite="s", config={})
        job = Job("m", "fp32", "d", "onnxruntime")
        store.record(store.add_jobs(run, [job])[job.key], JobResult("ok", metrics={"p50_ms": 1.0}))
    conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
    conn.execute("ALTER TABLE jobs DROP COLUMN power_mode")
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with Store(tmp_path / "h.db", readonly=True) as store:
        assert store.results(run)["power_mode"].isna().all()


# -- the report -------------------------------------------------------------------------------


def _frame(modes: list[str | None]) -> pd.DataFrame:
    from reports.sections.base import RESULT_COLUMNS

    rows = [dict.fromkeys(RESULT_COLUMNS) | {"run": "r", "model": "m", "variant": f"v{i % 2}", "device": "orin",
                                              "runtime": "onnxruntime", "status": "ok", "p50_ms": 1.0 + i,
                                              "p99_ms": 2.0 + i, "accuracy": 0.9 - i / 100, "power_mode": mode}
            for i, mode in enumerate(modes)]
    return pd.DataFrame(rows)


def test_report_results_table_has_a_power_mode_column_only_when_swept() -> None:
    from reports.sections.base import ReportContext
    from reports.sections.results import ResultsSection

    html = "".join(map(str, ResultsSection().render(ReportContext(_frame(["eco", "max"]))).blocks))
    assert "Power mode" in html and ">eco<" in html and ">max<" in html
    assert "Power mode" not in "".join(map(str, ResultsSection().render(ReportContext(_frame([None, None]))).blocks))


def test_pareto_points_and_front_are_labelled_with_the_mode() -> None:
    from reports.axes import ACCURACY_AXIS
    from reports.fronts import build_figure, runtime_styles

    points = _frame(["eco", "max", None])
    fig = build_figure(points, ACCURACY_AXIS, "t", runtime_styles(["onnxruntime"]))
    names = [cd[0] for cd in fig.data[0].customdata]
    assert names == ["v0 @ eco", "v1 @ max", "v0"]
    assert "<br>power mode: eco" in fig.data[0].customdata[0][9]
    assert set(fig.data[-1].text) <= {"v0 @ eco", "v1 @ max", "v0"} and "v0 @ eco" in fig.data[-1].text
