"""Jetson sources against fake sysfs trees laid out as jetson_stats (rbonghi/jetson_stats,
jtop/core/power.py) and the kernel's ina3221 driver lay them out:
INA3221 via hwmon (JetPack 5/6) and iio (JetPack 4), GPU devfreq, soctherm_oc counters,
locked clocks, nvpmodel."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.agent import telemetry
from devices.agent.telemetry.ina3221 import Ina3221Source
from devices.agent.telemetry.jetson import JetsonSource, parse_nvpmodel


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hwmon_board(root: Path, device: str, rails: list, hwmon: str = "hwmon3") -> Path:
    """rails: (label, mV, mA); K = 1..n as the ina3221 hwmon driver numbers them."""
    base = f"/sys/bus/i2c/drivers/ina3221/{device}/hwmon/{hwmon}"
    for k, (label, mv, ma) in enumerate(rails, start=1):
        write(root, f"{base}/in{k}_label", label + "\n")
        write(root, f"{base}/in{k}_input", f"{mv}\n")
        write(root, f"{base}/curr{k}_input", f"{ma}\n")
    return root / base.lstrip("/")


def test_orin_nx_hwmon_total_is_vdd_in_and_skips_nc_and_sum(tmp_path: Path) -> None:
    hw = hwmon_board(tmp_path, "1-0040", [("VDD_IN", 5000, 1060), ("VDD_CPU_GPU_CV", 5000, 155),
                                          ("NC", 0, 0)])
    write(tmp_path, hw.relative_to(tmp_path).as_posix() + "/in4_label", "Sum of shunt voltages\n")
    write(tmp_path, hw.relative_to(tmp_path).as_posix() + "/in4_input", "12\n")
    src = Ina3221Source(root=str(tmp_path))
    assert src.probe() == {"name": "ina3221", "role": "power", "kind": "power", "available": True, "reason": None}
    assert src.read() == pytest.approx(5.3)  # VDD_IN alone: 5000 mV * 1060 mA
    (hw / "curr2_input").write_text("999\n")  # another rail changes: the total does not
    assert src.read() == pytest.approx(5.3)
    d = src.details()
    assert d["interface"] == "hwmon" and d["total"] == "VDD_IN"
    assert d["rails_w"] == {"1-0040/VDD_IN": pytest.approx(5.3), "1-0040/VDD_CPU_GPU_CV": pytest.approx(4.995)}


def test_agx_orin_hwmon_sums_rails_across_hwmon_renumbering(tmp_path: Path) -> None:
    hwmon_board(tmp_path, "1-0040", [("VDD_GPU_SOC", 5000, 641), ("VDD_CPU_CV", 5000, 881),
                                     ("VIN_SYS_5V0", 5000, 953)], hwmon="hwmon11")
    src = Ina3221Source(root=str(tmp_path))
    assert src.probe()["available"]
    assert src.read() == pytest.approx(5.0 * (0.641 + 0.881 + 0.953))
    assert src.details()["total"] == "sum of rails"


def test_nano_jp4_iio(tmp_path: Path) -> None:
    dev = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for n, (name, mw) in enumerate((("POM_5V_IN", 1022), ("POM_5V_GPU", 0), ("POM_5V_CPU", 204))):
        write(tmp_path, f"{dev}/rail_name_{n}", name + "\n")
        write(tmp_path, f"{dev}/in_power{n}_input", f"{mw}\n")
    src = Ina3221Source(root=str(tmp_path))
    assert src.probe()["available"]
    assert src.read() == pytest.approx(1.022)
    assert src.details()["interface"] == "iio"


def test_ina3221_absent_or_unreadable(tmp_path: Path) -> None:
    probe = Ina3221Source(root=str(tmp_path)).probe()
    assert probe["available"] is False and "INA3221" in probe["reason"]
    hw = hwmon_board(tmp_path, "1-0040", [("VDD_IN", 5000, 1000)])
    (hw / "in1_input").write_text("garbage\n")
    probe = Ina3221Source(root=str(tmp_path)).probe()
    assert probe["available"] is False and "ValueError" in probe["reason"]


def jetson_state_tree(root: Path, oc2: int = 5, gpu_mhz: int = 611, locked: bool = True) -> Path:
    dev = "/sys/class/devfreq/17000000.gpu"
    write(root, f"{dev}/device/of_node/name", "ga10b\x00")
    write(root, f"{dev}/device/load", "523\n")  # per-mille
    write(root, f"{dev}/cur_freq", f"{gpu_mhz * 1000000}\n")
    write(root, f"{dev}/max_freq", "918000000\n")
    write(root, f"{dev}/min_freq", "918000000\n" if locked else "306000000\n")
    write(root, "/sys/class/devfreq/3100000.mmc/cur_freq", "1\n")  # another devfreq device
    for cpu in range(2):
        write(root, f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_min_freq", "1984000\n")
        write(root, f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq", "1984000\n")
    write(root, "/sys/class/hwmon/hwmon0/name", "soctherm_oc\n")
    for i, count in ((1, 0), (2, oc2), (3, 0)):
        write(root, f"/sys/class/hwmon/hwmon0/oc{i}_event_cnt", f"{count}\n")
    write(root, "/sys/class/hwmon/hwmon1/name", "ina3221\n")
    return root


def nvpmodel_runner(argv: list) -> str:
    assert argv == ["nvpmodel", "-q"]
    # Format of `nvpmodel -q` on JetPack (NVIDIA Jetson Linux developer guide, power management).
    return "NVPM WARN: fan mode is not set!\nNV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n"


def test_gpu_devfreq_nvpmodel_locked_clocks_and_oc_deltas(tmp_path: Path) -> None:
    jetson_state_tree(tmp_path)
    src = JetsonSource(root=str(tmp_path), runner=nvpmodel_runner)
    assert src.probe()["available"]
    before = src.snapshot()
    assert before["gpu"] == {"load_pct": 52.3, "freq_mhz": 611.0, "min_mhz": 918.0, "max_mhz": 918.0, "node": "ga10b"}
    assert before["nvpmodel"] == {"mode": "MAXN", "id": 0}
    assert before["clocks_locked"] is True
    assert before["clocks_locked_parts"] == {"cpu": True, "gpu": True, "emc": None}  # debugfs absent
    assert before["oc_events"] == {"oc1": 0, "oc2": 5, "oc3": 0}
    assert src.changes(before, src.snapshot()) == []
    jetson_state_tree(tmp_path, oc2=7, gpu_mhz=306)
    reasons = src.changes(before, src.snapshot())
    assert reasons == ["over-current events oc2 +2", "locked GPU clock fell from 611 to 306 MHz"]


def test_unlocked_gpu_clock_drop_is_not_throttling(tmp_path: Path) -> None:
    jetson_state_tree(tmp_path, locked=False)
    src = JetsonSource(root=str(tmp_path), path="")
    before = src.snapshot()
    assert before["clocks_locked"] is False and before["nvpmodel"]["reason"] == "nvpmodel not found on PATH"
    jetson_state_tree(tmp_path, gpu_mhz=306, locked=False)
    assert src.changes(before, src.snapshot()) == []


def test_nvpmodel_tolerates_odd_output() -> None:
    assert parse_nvpmodel("NV Power Mode: 15W\n2\n") == {"mode": "15W", "id": 2}
    assert parse_nvpmodel("garbage") == {"mode": None, "id": None}

    def failing(argv: list) -> str:
        raise RuntimeError("nvpmodel exited with 255: must be root")

    src = JetsonSource(root="/nonexistent", runner=failing)
    assert src.nvpmodel() == {"mode": None, "id": None, "reason": "RuntimeError: nvpmodel exited with 255: must be root"}


def test_not_a_jetson(tmp_path: Path) -> None:
    assert JetsonSource(root=str(tmp_path)).probe()["available"] is False
    write(tmp_path, "/etc/nv_tegra_release", "# R35 (release), REVISION: 4.1\n")
    assert JetsonSource(root=str(tmp_path)).probe()["available"] is True


def test_auto_picks_ina3221_on_a_jetson_and_lists_the_states(tmp_path: Path) -> None:
    jetson_state_tree(tmp_path)
    hwmon_board(tmp_path, "1-0040", [("VDD_IN", 5000, 1000)])
    source, reason, probes = telemetry.pick_power("auto", root=str(tmp_path), path="")
    assert source is not None and source.name == "ina3221" and reason is None
    assert [p["name"] for p in probes] == ["ina3221"]
    states = [s.name for s in telemetry.state_sources(root=str(tmp_path), path="")]
    assert states == ["cpufreq", "jetson"]  # no thermal zones or meminfo in this tree
