"""Telemetry in the agent: the spec's ``telemetry`` key, end-to-end runs with the sleep
runtime and an external meter command, sensors that break, cooldown, throttling, RAM
delta, and the probe's power sources."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import agent_testlib as lib
import pytest

from devices.agent import hostfacts
from devices.agent.cli import main
from devices.agent.errors import ProtocolError
from devices.agent.measure import Deadline, run_job
from devices.agent.runtimes import SleepRuntime
from devices.agent.spec import parse_spec
from devices.agent.telemetry.session import JobTelemetry
from devices.agent.telemetry.settings import TelemetrySettings, parse_telemetry

WATTS = 2.5


def meter(tmp_path: Path, body: str = f"print('{WATTS} W')") -> str:
    script = tmp_path / "meter.py"
    script.write_text(body + "\n")
    return f"{sys.executable} {script}"


def sleep_spec(tmp_path: Path, telemetry: dict | None = None, latency_ms: float = 5.0) -> dict:
    model = tmp_path / "model.bin"
    model.write_bytes(b"sleep runtime model")
    spec = lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": latency_ms})
    spec["measure"].update(min_s=0.6, min_iters=20, warmup_s=0.02, warmup_iters=2)
    if telemetry is not None:
        spec["telemetry"] = telemetry
    return spec


def run_inprocess(tmp_path: Path, spec: dict) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_spec_defaults_and_values() -> None:
    assert parse_telemetry(None) == TelemetrySettings()
    t = parse_telemetry({"power": {"source": "command", "command": "meter --watts", "unit": "J"},
                         "cooldown": {"max_temp_c": 55, "max_wait_s": 30}, "sample_ms": 20, "idle_s": 0})
    assert (t.power.source, t.power.command, t.power.unit) == ("command", "meter --watts", "J")
    assert (t.cooldown.max_temp_c, t.cooldown.max_wait_s, t.cooldown.delta_c) == (55.0, 30.0, None)
    assert (t.sample_ms, t.idle_s) == (20.0, 0.0)
    spec = parse_spec(sleep_spec(Path("/tmp")))  # no telemetry key: all defaults
    assert spec.telemetry.power.source == "auto" and spec.telemetry.sample_ms == 50.0


@pytest.mark.parametrize("raw,needle", [
    ({"power": {"source": "wattmeter"}}, "telemetry.power.source must be one of auto, none, ina3221"),
    ({"power": {"unit": "kWh"}}, "telemetry.power.unit"),
    ({"cooldown": {"max_wait_s": -1}}, "telemetry.cooldown.max_wait_s"),
    ({"sample_ms": True}, "telemetry.sample_ms"),
    ({"sample_ms": 0.5}, "telemetry.sample_ms must be >= 1"),
    ({"powr": {}}, "unknown spec key telemetry.powr"),
    ("auto", "spec key telemetry must be an object"),
])
def test_spec_faults_are_protocol_errors(raw: object, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle.replace(".", r"\.")):
        parse_telemetry(raw)


def test_end_to_end_agent_process_with_a_command_meter(tmp_path: Path) -> None:
    spec = sleep_spec(tmp_path, {"power": {"source": "command", "command": meter(tmp_path)}, "idle_s": 0.3})
    rc, events, stderr = lib.run_agent(["-m", "devices.agent", "measure", str(lib.write_spec(tmp_path, spec))])
    assert rc == 0, stderr
    res = lib.by_event(events, "result")[0]
    lat = res["latency"]
    per_iter_s = lat["window_s"] / lat["n"]
    assert res["power_source"] == "command" and res["power_reason"] is None
    assert res["energy_mj"] == pytest.approx(WATTS * per_iter_s * 1000, rel=0.03)
    assert res["avg_power_w"] == pytest.approx(WATTS) and res["peak_power_w"] == pytest.approx(WATTS)
    assert res["idle_power_w"] == pytest.approx(WATTS)
    assert res["throttled"] is False and res["throttle_reason"] is None and res["cooldown_s"] == 0.0
    window = res["telemetry"]["power"]["window"]
    assert window["kind"] == "power" and window["period_ms"] == 100.0 and window["n_samples"] >= 4
    assert window["span_s"] == pytest.approx(lat["window_s"], rel=0.02)
    assert res["telemetry"]["energy_above_idle_mj"] == pytest.approx(0.0, abs=1e-6)
    assert res["telemetry"]["power"]["details"]["unit"] == "W"


def test_joule_meter_is_a_counter(tmp_path: Path) -> None:
    """A meter printing cumulative joules of a 2 W load: energy comes from counter deltas."""
    import time

    body = f"import time; print(round(2.0 * (time.time() - {time.time() - 100.0!r}), 6), 'J')"
    spec = sleep_spec(tmp_path, {"power": {"source": "command", "command": meter(tmp_path, body), "unit": "J"},
                                 "idle_s": 0})
    rc, events = run_inprocess(tmp_path, spec)
    res = events[-1]
    assert rc == 0 and res["power_source"] == "command"
    w = res["telemetry"]["power"]["window"]
    assert w["kind"] == "energy" and w["avg_power_w"] == pytest.approx(2.0, rel=0.05)
    per_iter_s = res["latency"]["window_s"] / res["latency"]["n"]
    assert res["energy_mj"] == pytest.approx(2.0 * per_iter_s * 1e3, rel=0.05)
    assert res["idle_power_w"] is None


def test_no_power_source_states_the_reason(tmp_path: Path) -> None:
    rc, events = run_inprocess(tmp_path, sleep_spec(tmp_path, {"power": {"source": "none"}}))
    res = events[-1]
    assert rc == 0 and res["event"] == "result"
    assert res["energy_mj"] is None and res["avg_power_w"] is None and res["power_source"] is None
    assert "none" in res["power_reason"] and res["throttled"] is False


def test_auto_on_a_bare_board(tmp_path: Path) -> None:
    """A fake root with nothing in it: no source, the reason lists every try; the job is fine."""
    spec = parse_spec(sleep_spec(tmp_path))
    tel = JobTelemetry(spec.telemetry, root=str(tmp_path / "bare"), path="")
    res = run_job(spec, SleepRuntime({"latency_ms": 1.0}), {"version": "0"}, lambda p: None, Deadline(60), None, tel)
    assert res["energy_mj"] is None and res["power_source"] is None
    assert res["power_reason"].startswith("no power source available (ina3221: ")
    assert "rapl: no RAPL" in res["power_reason"] and "command: no meter command" in res["power_reason"]
    assert res["temp_before_c"] is None and res["ram_delta_mb"] is None and res["throttled"] is False


@pytest.mark.parametrize("body,needle", [
    ("import sys; sys.exit(3)", "exited with 3"),
    ("print('n/a')", "printed no number"),
])
def test_broken_meter_is_a_reason_not_a_failure(tmp_path: Path, body: str, needle: str) -> None:
    spec = sleep_spec(tmp_path, {"power": {"source": "command", "command": meter(tmp_path, body)}})
    rc, events = run_inprocess(tmp_path, spec)
    res = events[-1]
    assert rc == 0 and res["event"] == "result" and res["latency"]["n"] >= 20
    assert res["power_source"] is None and res["energy_mj"] is None and needle in res["power_reason"]


def test_meter_that_dies_after_the_probe(tmp_path: Path) -> None:
    count = tmp_path / "calls"
    body = (f"import pathlib, sys; p = pathlib.Path({str(count)!r}); n = len(p.read_text()) if p.exists() else 0; "
            "p.write_text('x' * (n + 1)); sys.exit(1) if n else print(4.0)")
    spec = sleep_spec(tmp_path, {"power": {"source": "command", "command": meter(tmp_path, body)}, "idle_s": 0})
    rc, events = run_inprocess(tmp_path, spec)
    res = events[-1]
    assert rc == 0 and res["power_source"] == "command" and res["energy_mj"] is None
    assert res["power_reason"].startswith("no usable samples") and "exited with 1" in res["power_reason"]


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_board(root: Path, temp_milli: int, throttles: int, used_kb: int) -> Path:
    write(root, "/sys/class/thermal/thermal_zone0/type", "x86_pkg_temp\n")
    write(root, "/sys/class/thermal/thermal_zone0/temp", f"{temp_milli}\n")
    write(root, "/sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count", f"{throttles}\n")
    write(root, "/proc/meminfo", f"MemTotal: 8000000 kB\nMemAvailable: {8000000 - used_kb} kB\n")
    return root


def test_cooldown_snapshots_throttle_and_ram_delta(tmp_path: Path) -> None:
    fake_board(tmp_path, 30000, 4, 1024 * 1000)
    settings = parse_telemetry({"power": {"source": "none"}, "cooldown": {"max_temp_c": 50, "max_wait_s": 5}})
    tel = JobTelemetry(settings, root=str(tmp_path), path="")
    assert [s.name for s in tel.states] == ["thermal", "cpufreq", "memory"]
    tel.before_job()
    tel.start_window()
    fake_board(tmp_path, 71500, 9, 1024 * 1250)  # the window heated the board, throttled, used 250 MiB
    tel.stop_window()
    f = tel.fields(100)
    assert f["cooldown_s"] < 1.0 and f["cooldown_timed_out"] is False
    assert (f["temp_before_c"], f["temp_after_c"]) == (30.0, 71.5)
    assert f["throttled"] is True and f["throttle_reason"] == "thermal throttle count cpu0_core +5"
    assert f["ram_delta_mb"] == 250.0
    json.dumps(f, allow_nan=False)  # what the emitter requires


def test_cooldown_waits_and_times_out_in_a_job(tmp_path: Path) -> None:
    fake_board(tmp_path, 80000, 0, 0)
    slept: list = []
    settings = parse_telemetry({"power": {"source": "none"}, "cooldown": {"max_temp_c": 50, "max_wait_s": 0.3}})
    tel = JobTelemetry(settings, root=str(tmp_path), path="", sleep=slept.append)
    spec = parse_spec(sleep_spec(tmp_path))
    phases: list = []
    res = run_job(spec, SleepRuntime({"latency_ms": 1.0}), {}, phases.append, Deadline(60), None, tel)
    assert phases[0] == "cooldown" and slept  # it polled the temperature
    assert res["cooldown_timed_out"] is True and res["telemetry"]["cooldown"]["end_c"] == 80.0


def test_a_crashing_state_source_is_an_error_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devices.agent.telemetry.thermal import ThermalSource

    def boom(self: ThermalSource) -> dict:
        raise RuntimeError("sensor on fire")

    fake_board(tmp_path, 30000, 0, 0)
    monkeypatch.setattr(ThermalSource, "snapshot", boom)
    tel = JobTelemetry(parse_telemetry({"power": {"source": "none"}}), root=str(tmp_path), path="")
    tel.before_job()
    tel.start_window()
    tel.stop_window()
    f = tel.fields(10)
    assert f["throttled"] is False and any("sensor on fire" in e for e in f["telemetry"]["errors"])


def test_probe_lists_power_sources(tmp_path: Path) -> None:
    write(tmp_path, "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/in1_label", "VDD_IN\n")
    write(tmp_path, "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/in1_input", "5000\n")
    write(tmp_path, "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/curr1_input", "900\n")
    facts = hostfacts.collect(str(tmp_path), path="")
    sources = {s["name"]: s for s in facts["power_sources"]}
    assert list(sources) == ["ina3221", "tegrastats", "pi5-pmic", "ina2xx", "rapl", "nvml"]
    assert sources["ina3221"] == {"name": "ina3221", "kind": "power", "available": True, "reason": None}
    assert sources["tegrastats"]["available"] is False and "PATH" in sources["tegrastats"]["reason"]
    out = io.StringIO()
    assert main(["probe", "--runtimes", "sleep"], out=out) == 0
    host = json.loads(out.getvalue())["host"]
    assert all(isinstance(s["available"], bool) and (s["available"] or s["reason"]) for s in host["power_sources"])


def test_tegrastats_that_cannot_start_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devices.agent.telemetry.tegrastats import TegrastatsSource

    class Runner:
        commands = ("tegrastats",)

        def __call__(self, argv: list) -> str:
            return ""

    def no_spawn(self: TegrastatsSource, interval_ms: float) -> None:
        raise PermissionError(13, "Permission denied", "tegrastats")

    monkeypatch.setattr(TegrastatsSource, "open_stream", no_spawn)
    tel = JobTelemetry(parse_telemetry({"power": {"source": "tegrastats"}, "idle_s": 0}), root=str(tmp_path),
                       runner=Runner())
    tel.before_job()
    tel.start_window()
    tel.stop_window()
    f = tel.fields(10)
    assert f["power_source"] == "tegrastats" and f["energy_mj"] is None
    assert f["power_reason"].startswith("the sampler did not run (sampler start: PermissionError")


def test_sampler_thread_ends_when_the_timed_loop_fails(tmp_path: Path) -> None:
    import threading

    from devices.agent.errors import MeasurementError

    write(tmp_path, "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/in1_label", "VDD_IN\n")
    write(tmp_path, "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/in1_input", "5000\n")
    write(tmp_path, "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2/curr1_input", "900\n")
    tel = JobTelemetry(parse_telemetry({"idle_s": 0}), root=str(tmp_path), path="")
    assert tel.power is not None and tel.power.name == "ina3221"  # auto found the fake Jetson monitor
    spec = parse_spec(sleep_spec(tmp_path))
    threads = threading.active_count()
    with pytest.raises(MeasurementError, match="phase timed"):
        run_job(spec, SleepRuntime({"latency_ms": 50.0}), {}, lambda p: None, Deadline(0.5), None, tel)
    assert threading.active_count() == threads
