"""Power modes on the board (``devices/agent/power/``): the spec's ``power_mode``, applying and
restoring cpufreq, nvpmodel and jetson_clocks against fake sysfs trees and fake tools, the
refusals, the restore file and its recovery, a whole ``measure`` in a mode."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import agent_testlib as lib
import power_testlib as fake
import pytest

from devices.agent import hostfacts, power
from devices.agent.cli import main
from devices.agent.errors import PowerModeError, ProtocolError
from devices.agent.power.session import RESTORE_FILE, PowerSession, recover
from devices.agent.spec import CpufreqMode, PowerMode, parse_spec, spec_to_json

ECO = PowerMode("eco", CpufreqMode(governor="powersave", max_freq_khz=1200000))
ORIG = [("schedutil", fake.CPUINFO[0], fake.CPUINFO[1])] * 4


def board(tmp_path: Path, root: Path, path: str | None = "") -> power.PowerBoard:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return power.PowerBoard(str(work), str(root), path)


# -- the spec ---------------------------------------------------------------------------------


def test_spec_round_trip_and_absence(tmp_path: Path) -> None:
    raw = lib.make_spec(tmp_path / "m.onnx")
    assert parse_spec(raw).power_mode is None and "power_mode" not in spec_to_json(parse_spec(raw))
    mode = PowerMode("max", CpufreqMode(governor="performance", min_freq_khz=1000000), nvpmodel=0, jetson_clocks=True,
                     settle_s=0.5)
    spec = parse_spec(dict(raw, power_mode={"name": "max", "cpufreq": {"governor": "performance",
                                                                        "min_freq_khz": 1000000},
                                            "nvpmodel": 0, "jetson_clocks": True, "settle_s": 0.5}))
    assert spec.power_mode == mode
    again = spec_to_json(spec)
    assert again["protocol"] == raw["protocol"]  # an older agent refuses the key: no protocol step
    assert parse_spec(json.loads(json.dumps(again))) == spec


@pytest.mark.parametrize("mode,needle", [
    ({"cpufreq": {"governor": "powersave"}}, "spec is missing key power_mode.name"),
    ({"name": "eco"}, "power_mode 'eco' sets nothing"),
    ({"name": "eco", "cpufreq": {}}, "power_mode.cpufreq sets nothing"),
    ({"name": "eco", "cpufreq": {"governor": "Power Save"}}, "power_mode.cpufreq.governor must be a governor name"),
    ({"name": "eco", "cpufreq": {"max_freq_khz": 0}}, "power_mode.cpufreq.max_freq_khz must be a positive int"),
    ({"name": "eco", "cpufreq": {"max_freq_khz": 1.5e6}}, "power_mode.cpufreq.max_freq_khz must be int"),
    ({"name": "eco", "cpufreq": {"min_freq_khz": 2, "max_freq_khz": 1}}, "min_freq_khz (2) is above max_freq_khz"),
    ({"name": "eco", "cpufreq": {"governor": "powersave", "typo": 1}}, "unknown spec key power_mode.cpufreq.typo"),
    ({"name": "nv", "nvpmodel": -1}, "power_mode.nvpmodel must be a mode id >= 0"),
    ({"name": "nv", "jetson_clocks": 1}, "power_mode.jetson_clocks must be bool"),
    ({"name": "a b", "nvpmodel": 1}, "power_mode.name must be"),
    ({"name": "nv", "nvpmodel": 1, "settle_s": -1}, "power_mode.settle_s must be in"),
    ("eco", "spec key power_mode must be dict"),
])
def test_spec_faults_name_the_key(tmp_path: Path, mode: object, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        parse_spec(lib.make_spec(tmp_path / "m.onnx", power_mode=mode))


# -- cpufreq ----------------------------------------------------------------------------------


def test_cpufreq_applied_read_back_and_restored(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = board(tmp_path, root)
    session = PowerSession(ECO, b, "j1")
    session.apply()
    assert fake.state(root) == [("powersave", fake.CPUINFO[0], 1200000)] * 4
    restore_file = Path(b.workdir) / RESTORE_FILE
    saved = json.loads(restore_file.read_text())  # written before the mode was applied
    assert saved["mode"] == "eco" and saved["job_id"] == "j1" and saved["owner"]["pid"] == os.getpid()
    assert saved["saved"]["cpufreq"]["cpus"]["cpu3"] == {"governor": "schedutil", "min_freq_khz": fake.CPUINFO[0],
                                                         "max_freq_khz": fake.CPUINFO[1]}
    assert session.restore() is None
    assert fake.state(root) == ORIG and not restore_file.exists()
    rec = session.record()
    assert rec["name"] == "eco" and rec["restored"] is True and rec["restore_error"] is None
    assert rec["applied"]["cpufreq"] == {"governor": "powersave", "min_freq_khz": fake.CPUINFO[0],
                                         "max_freq_khz": 1200000, "cpus": 4}
    assert rec["requested"]["cpufreq"]["max_freq_khz"] == 1200000 and rec["settle_s"] == 0.0
    assert session.restore() is None  # idempotent


def test_a_minimum_above_the_current_maximum_is_written_after_the_maximum(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root", hi=500000)
    pinned = PowerMode("pinned", CpufreqMode(min_freq_khz=1400000, max_freq_khz=1400000))
    session = PowerSession(pinned, board(tmp_path, root), "j")
    written = []
    real = session.board.write
    session.board.write = lambda path, value: (written.append((Path(path).name, value)), real(path, value))[1]
    session.apply()
    assert written[:2] == [("scaling_max_freq", 1400000), ("scaling_min_freq", 1400000)]
    assert fake.state(root) == [("schedutil", 1400000, 1400000)] * 4
    session.restore()
    assert fake.state(root) == [("schedutil", fake.CPUINFO[0], 500000)] * 4


@pytest.mark.parametrize("mode,needle", [
    (CpufreqMode(governor="turbo"), "governor 'turbo' is not offered by cpu0 (scaling_available_governors: "),
    (CpufreqMode(max_freq_khz=3000000), "max_freq_khz 3000000 kHz is outside cpu0's cpuinfo_min_freq..cpuinfo_max_freq"
                                        " (115200..1510400 kHz)"),
    (CpufreqMode(min_freq_khz=1000), "min_freq_khz 1000 kHz is outside cpu0's"),
])
def test_cpufreq_refusals_change_nothing(tmp_path: Path, mode: CpufreqMode, needle: str) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = board(tmp_path, root)
    with pytest.raises(PowerModeError) as exc:
        PowerSession(PowerMode("m", mode), b, "j").apply()
    assert needle in str(exc.value) and "\n" not in str(exc.value)
    assert fake.state(root) == ORIG and not (Path(b.workdir) / RESTORE_FILE).exists()


def test_no_cpufreq_on_the_board(tmp_path: Path) -> None:
    (tmp_path / "root" / "sys" / "devices" / "system" / "cpu" / "cpu0").mkdir(parents=True)  # a VM: no cpufreq
    with pytest.raises(PowerModeError, match="^no cpufreq on this board"):
        PowerSession(ECO, board(tmp_path, tmp_path / "root"), "j").apply()


@pytest.mark.skipif(os.path.isdir("/sys/devices/system/cpu/cpu0/cpufreq"), reason="this machine has cpufreq")
def test_this_machine_has_no_cpufreq_and_says_so(tmp_path: Path) -> None:
    b = power.PowerBoard(str(tmp_path))  # the real /sys
    with pytest.raises(PowerModeError) as exc:
        PowerSession(ECO, b, "j").apply()
    assert str(exc.value) == ("no cpufreq on this board (/sys/devices/system/cpu/cpu0/cpufreq absent: a VM or a "
                              "container?)")
    assert os.listdir(tmp_path) == []
    assert power.describe()["cpufreq"] == {"reason": str(exc.value)}


def test_without_root_the_refusal_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = board(tmp_path, root)
    b.euid = 1000
    monkeypatch.setattr(b, "writable", lambda path: False)  # sysfs files are root's, mode 0644
    with pytest.raises(PowerModeError) as exc:
        PowerSession(ECO, b, "j").apply()
    assert str(exc.value) == ("cannot write %s: permission denied (power modes need root: the agent runs as uid 1000)"
                              % (fake.cpu_dir(root, 0) / "scaling_governor"))
    assert fake.state(root) == ORIG


def test_a_write_the_kernel_refuses_midway_restores_what_was_changed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = board(tmp_path, root)
    real_open, refused = open, []

    def refusing_open(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN202 - the kernel says EINVAL, once
        if "w" in mode and str(path).endswith("cpu2/cpufreq/scaling_max_freq") and not refused:
            refused.append(path)
            raise OSError(22, "Invalid argument")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    with pytest.raises(PowerModeError, match=r"cannot write '1200000' to .*cpu2/cpufreq/scaling_max_freq: the kernel "
                                             r"refused it"):
        PowerSession(ECO, b, "j").apply()
    monkeypatch.undo()
    assert fake.state(root) == ORIG and not (Path(b.workdir) / RESTORE_FILE).exists()


# -- nvpmodel and jetson_clocks ---------------------------------------------------------------


def test_nvpmodel_and_jetson_clocks_apply_in_order_and_restore(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    bin_dir, log = fake.fake_tools(tmp_path, root, mode=0)
    b = board(tmp_path, root, str(bin_dir))
    mode = PowerMode("nv15w", CpufreqMode(governor="performance"), nvpmodel=2, jetson_clocks=True, settle_s=0)
    session = PowerSession(mode, b, "j")
    session.apply()
    stored = str(Path(b.workdir) / "power-jetson_clocks.conf")
    assert fake.calls(log) == ["nvpmodel -q", f"jetson_clocks --store {stored}", "nvpmodel -m 2", "jetson_clocks",
                               "nvpmodel -q"]
    assert fake.nvpmodel_mode(tmp_path) == 2
    assert fake.state(root) == [("performance", fake.CPUINFO[1], fake.CPUINFO[1])] * 4  # locked: min = max
    assert session.applied["nvpmodel"] == {"mode": "15W", "id": 2}
    assert session.applied["jetson_clocks"] == {"cpu_locked": True, "gpu_locked": None}
    assert session.saved["nvpmodel"] == {"mode": "MAXN", "id": 0}
    log.write_text("")
    assert session.restore() is None
    assert fake.calls(log) == ["nvpmodel -m 0", f"jetson_clocks --restore {stored}"]
    assert fake.nvpmodel_mode(tmp_path) == 0 and fake.state(root) == ORIG and os.listdir(b.workdir) == []


def test_an_nvpmodel_mode_that_does_not_take_is_refused_and_undone(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    bin_dir, log = fake.fake_tools(tmp_path, root, mode=1, stuck=True)
    b = board(tmp_path, root, str(bin_dir))
    with pytest.raises(PowerModeError, match=r"power mode 'maxn' did not take: nvpmodel reads mode 1 after "
                                             r"'nvpmodel -m 0' \(a mode that takes effect only after a reboot\?\)"):
        PowerSession(PowerMode("maxn", nvpmodel=0, settle_s=0), b, "j").apply()
    assert fake.calls(log)[-1] == "nvpmodel -m 1" and os.listdir(b.workdir) == []


def test_missing_tools_are_refused(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = board(tmp_path, root, str(tmp_path / "empty-bin"))
    with pytest.raises(PowerModeError, match="^no nvpmodel on this board"):
        PowerSession(PowerMode("nv", nvpmodel=2), b, "j").apply()
    with pytest.raises(PowerModeError, match="^no jetson_clocks on this board"):
        PowerSession(PowerMode("max", jetson_clocks=True), b, "j").apply()


def test_a_failing_tool_says_what_it_printed_and_that_root_is_needed(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    bin_dir, _ = fake.fake_tools(tmp_path, root)
    (bin_dir / "nvpmodel").write_text("#!/bin/sh\n[ \"$1\" = -q ] && { echo 'NV Power Mode: MAXN'; echo 0; exit 0; }\n"
                                      "echo 'NVPM ERROR: Error opening /sys/devices/system/cpu/cpu1/online: 13' >&2\n"
                                      "exit 1\n")
    b = board(tmp_path, root, str(bin_dir))
    b.euid = 1000
    with pytest.raises(PowerModeError) as exc:
        PowerSession(PowerMode("nv", nvpmodel=2, settle_s=0), b, "j").apply()
    assert str(exc.value).startswith("nvpmodel -m 2 exited with 1: NVPM ERROR: Error opening ")
    assert str(exc.value).endswith("(power modes need root: the agent runs as uid 1000)")


# -- the restore file and recovery ------------------------------------------------------------


def _left_by_dead_process(tmp_path: Path, root: Path) -> power.PowerBoard:
    """The restore file of a process that applied ``ECO`` and died (a real pid that is gone)."""
    b = board(tmp_path, root)
    session = PowerSession(ECO, b, "dead-job")
    session.apply()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = Path(b.workdir) / RESTORE_FILE
    data = json.loads(path.read_text())
    data["owner"]["pid"] = int(dead.stdout)
    path.write_text(json.dumps(data))
    session.armed = False  # this process "died": it restores nothing
    return b


def test_recover_applies_a_dead_jobs_restore_file_and_removes_it(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = _left_by_dead_process(tmp_path, root)
    assert fake.state(root)[0][0] == "powersave"
    said = recover(b)
    assert said and "restored the board's state from before the power mode 'eco' of job dead-job" in said
    assert fake.state(root) == ORIG and os.listdir(b.workdir) == []
    assert recover(b) is None  # nothing left to do


def test_a_live_jobs_restore_file_is_left_alone_and_blocks_another_mode(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = board(tmp_path, root)
    live = PowerSession(ECO, b, "live")
    live.apply()
    assert recover(b) is None and fake.state(root)[0][0] == "powersave"  # its owner (this process) runs
    with pytest.raises(PowerModeError, match="held by another job, or could not be restored after one"):
        PowerSession(PowerMode("max", CpufreqMode(governor="performance")), b, "other").apply()
    live.restore()
    assert fake.state(root) == ORIG


def test_a_malformed_restore_file_is_moved_aside(tmp_path: Path) -> None:
    b = board(tmp_path, tmp_path / "root")
    (Path(b.workdir) / RESTORE_FILE).write_text("{not json")
    assert "is malformed; moved aside" in (recover(b) or "")
    assert os.listdir(b.workdir) == [RESTORE_FILE + ".bad"]


def test_a_restore_that_fails_keeps_the_file_for_the_next_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    b = _left_by_dead_process(tmp_path, root)
    monkeypatch.setattr(power.PowerBoard, "write", lambda self, path, value: (_ for _ in ()).throw(
        PowerModeError("cannot write %s: permission denied" % path)))
    said = recover(b) or ""
    assert said.startswith("power: could not undo the power mode 'eco'") and said.endswith("is kept")
    assert (Path(b.workdir) / RESTORE_FILE).exists()
    monkeypatch.undo()
    assert "restored" in (recover(b) or "") and fake.state(root) == ORIG


# -- a whole job, and the board's facts -------------------------------------------------------


def sleep_spec(tmp_path: Path, mode: dict | None, latency_ms: float = 1.0, min_s: float = 0.2) -> Path:
    model = tmp_path / "model.bin"
    model.write_bytes(b"sleep")
    spec = lib.make_spec(model, runtime="sleep", runtime_options={"latency_ms": latency_ms},
                         measure={"min_s": min_s, "min_iters": 5, "warmup_s": 0.01, "warmup_iters": 1})
    if mode is not None:
        spec["power_mode"] = mode
    return lib.write_spec(tmp_path, spec)


def run_measure(argv: list[str]) -> tuple[int, list[dict]]:
    out = io.StringIO()
    rc = main(argv, out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_measure_in_a_mode_records_it_and_restores_the_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    bin_dir, log = fake.fake_tools(tmp_path, root, mode=0)
    monkeypatch.setenv(power.SYSFS_ROOT_ENV, str(root))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    mode = {"name": "nv15w-eco", "nvpmodel": 2, "cpufreq": {"governor": "powersave", "max_freq_khz": 1200000},
            "settle_s": 0}
    rc, events = run_measure(["measure", "--workdir", str(work), str(sleep_spec(tmp_path, mode))])
    assert rc == 0, events
    assert "power_mode" in [e["phase"] for e in lib.by_event(events, "progress")]
    pm = lib.by_event(events, "result")[0]["power_mode"]
    assert pm["name"] == "nv15w-eco" and pm["restored"] is True
    assert pm["applied"] == {"nvpmodel": {"mode": "15W", "id": 2},
                             "cpufreq": {"governor": "powersave", "min_freq_khz": fake.CPUINFO[0],
                                         "max_freq_khz": 1200000, "cpus": 4}}
    assert pm["before"]["nvpmodel"] == {"mode": "MAXN", "id": 0}
    assert fake.state(root) == ORIG and fake.nvpmodel_mode(tmp_path) == 0 and os.listdir(work) == []


def test_measure_refusal_is_a_job_failure_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake.cpufreq_tree(tmp_path / "root")
    monkeypatch.setenv(power.SYSFS_ROOT_ENV, str(root))
    mode = {"name": "turbo", "cpufreq": {"governor": "turbo"}}
    rc, events = run_measure(["measure", "--workdir", str(tmp_path), str(sleep_spec(tmp_path, mode))])
    err = lib.by_event(events, "error")
    assert rc == 1 and len(err) == 1 and err[0]["kind"] == "PowerModeError"
    assert err[0]["message"].startswith("governor 'turbo' is not offered by cpu0")
    assert fake.state(root) == ORIG


def test_host_facts_carry_the_power_state(tmp_path: Path) -> None:
    root = fake.cpufreq_tree(tmp_path / "root", governor="performance")
    bin_dir, _ = fake.fake_tools(tmp_path, root, mode=3)
    st = hostfacts.collect(str(root), path=str(bin_dir))["power_state"]
    assert st["cpufreq"]["governor"] == "performance" and st["cpufreq"]["cpus"] == 4
    assert st["cpufreq"]["available_governors"] == fake.GOVERNORS.split()
    assert st["cpufreq"]["cpuinfo_khz"] == list(fake.CPUINFO)
    assert st["nvpmodel"] == {"mode": "7W", "id": 3, "path": str(bin_dir / "nvpmodel")}
    assert st["jetson_clocks"] == {"path": str(bin_dir / "jetson_clocks")}
    assert st["root"] is (os.geteuid() == 0)
    empty = hostfacts.collect(str(tmp_path / "none"), path="")["power_state"]
    assert empty["nvpmodel"] == {"reason": "nvpmodel not found"} and "no cpufreq" in empty["cpufreq"]["reason"]
