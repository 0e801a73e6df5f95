"""x86 and generic sources: RAPL counters (wrap, root-only), NVML (fake module; the real one
is absent here), CPU clocks and throttle counters, thermal zones, and this machine's own
/sys/class/thermal and /proc/meminfo."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from devices.agent.telemetry import base, pick_power
from devices.agent.telemetry.cpufreq import CpufreqSource
from devices.agent.telemetry.meminfo import MemorySource, used_mb
from devices.agent.telemetry.nvml import NvmlSource
from devices.agent.telemetry.rapl import RaplSource, counter_delta
from devices.agent.telemetry.thermal import ThermalSource

MAX_UJ = 262143328850  # max_energy_range_uj of a real package domain


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rapl_tree(root: Path, package_uj: int, dram_uj: int) -> Path:
    for zone, name, uj in (("intel-rapl:0", "package-0", package_uj), ("intel-rapl:0:0", "core", 5),
                           ("intel-rapl:0:2", "dram", dram_uj), ("intel-rapl:1", "psys", 7)):
        write(root, f"/sys/class/powercap/{zone}/name", name + "\n")
        write(root, f"/sys/class/powercap/{zone}/energy_uj", f"{uj}\n")
        write(root, f"/sys/class/powercap/{zone}/max_energy_range_uj", f"{MAX_UJ}\n")
    return root


def test_counter_delta_wraps() -> None:
    assert counter_delta(100, 350, MAX_UJ) == 250
    assert counter_delta(MAX_UJ - 1_000_000, 500_000, MAX_UJ) == 1_500_000
    with pytest.raises(ValueError, match="backwards"):
        counter_delta(10, 5, None)


def test_rapl_sums_package_and_dram_across_a_wrap(tmp_path: Path) -> None:
    rapl_tree(tmp_path, MAX_UJ - 1_000_000, 2_000_000)
    src = RaplSource(root=str(tmp_path))
    assert src.probe() == {"name": "rapl", "role": "power", "kind": "energy", "available": True, "reason": None}
    assert src.details() == {"domains": ["intel-rapl:0(package-0)", "intel-rapl:0:2(dram)"]}  # not core, psys
    first = src.read()
    rapl_tree(tmp_path, 500_000, 2_250_000)  # the package counter wrapped
    assert src.delta(first, src.read()) == pytest.approx(1.5 + 0.25)


def test_rapl_root_only_is_reported_honestly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rapl_tree(tmp_path, 1, 1)
    real_open = open

    def denying_open(path, *args, **kwargs):  # noqa: ANN001, ANN202 - root ignores chmod, so deny here
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(base, "open", denying_open, raising=False)
    probe = RaplSource(root=str(tmp_path)).probe()
    assert probe["available"] is False
    assert "PermissionError" in probe["reason"] and "root only since Linux 5.10" in probe["reason"]
    source, reason, _ = pick_power("rapl", root=str(tmp_path))
    assert source is None and "CVE-2020-8694" in reason


def test_rapl_absent(tmp_path: Path) -> None:
    assert "no RAPL" in RaplSource(root=str(tmp_path)).probe()["reason"]


def test_nvml_not_installed_here_is_a_reason() -> None:
    try:
        import pynvml  # noqa: F401
    except ImportError:
        probe = NvmlSource().probe()
        assert probe["available"] is False and "pynvml" in probe["reason"]
    else:  # a machine with pynvml: the probe must still answer without raising
        assert isinstance(NvmlSource().probe()["available"], bool)


def fake_nvml(energy: bool) -> SimpleNamespace:
    state = {"mj": 1000, "shutdown": 0}

    def total_energy(handle: int) -> int:
        if not energy:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        state["mj"] += 500
        return state["mj"]

    return SimpleNamespace(
        state=state, nvmlInit=lambda: None, nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetName=lambda h: b"NVIDIA H200",
        nvmlDeviceGetTotalEnergyConsumption=total_energy, nvmlDeviceGetPowerUsage=lambda h: 75000,
        nvmlShutdown=lambda: state.__setitem__("shutdown", state["shutdown"] + 1))


def test_nvml_energy_counter_preferred() -> None:
    nv = fake_nvml(energy=True)
    src = NvmlSource(nvml=nv)
    assert src.probe()["kind"] == "energy" and src.kind == "energy"
    first, last = src.read(), src.read()
    assert src.delta(first, last) == pytest.approx(2 * 1.0)  # each GPU's counter +1000 mJ
    assert src.details() == {"gpus": ["NVIDIA H200", "NVIDIA H200"], "method": "total energy counter"}
    src.close()
    src.close()
    assert nv.state["shutdown"] == 1


def test_nvml_power_usage_when_no_counter() -> None:
    src = NvmlSource(nvml=fake_nvml(energy=False))
    probe = src.probe()
    assert probe["available"] and probe["kind"] == "power"
    assert src.read() == pytest.approx(150.0)  # 2 x 75 W


def cpu_tree(root: Path, governor: str, mhz: tuple, counts: tuple) -> Path:
    for cpu, (f, c) in enumerate(zip(mhz, counts)):
        base_dir = f"/sys/devices/system/cpu/cpu{cpu}"
        write(root, f"{base_dir}/cpufreq/scaling_cur_freq", f"{f * 1000}\n")
        write(root, f"{base_dir}/cpufreq/scaling_governor", governor + "\n")
        write(root, f"{base_dir}/cpufreq/scaling_min_freq", "800000\n")
        write(root, f"{base_dir}/cpufreq/scaling_max_freq", "4600000\n")
        write(root, f"{base_dir}/thermal_throttle/core_throttle_count", f"{c}\n")
    write(root, "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor", governor)  # not a cpuN dir
    return root


def test_cpufreq_snapshot_and_throttle_counter_deltas(tmp_path: Path) -> None:
    cpu_tree(tmp_path, "powersave", (3900, 4200), (3, 0))
    src = CpufreqSource(root=str(tmp_path))
    assert src.probe()["available"]
    before = src.snapshot()
    assert before == {"freq_mhz": {"cpu0": 3900.0, "cpu1": 4200.0}, "max_freq_mhz": 4200.0,
                      "governors": ["powersave"], "clocks_pinned": False,
                      "throttle_counts": {"cpu0_core": 3, "cpu1_core": 0}}
    cpu_tree(tmp_path, "powersave", (1200, 1200), (3, 2))
    # a dynamic governor's lower clock is not throttling; the counter is
    assert src.changes(before, src.snapshot()) == ["thermal throttle count cpu1_core +2"]


def test_pinned_clock_drop_is_throttling(tmp_path: Path) -> None:
    cpu_tree(tmp_path, "performance", (4200, 4200), (0, 0))
    src = CpufreqSource(root=str(tmp_path))
    before = src.snapshot()
    cpu_tree(tmp_path, "performance", (3000, 3100), (0, 0))
    assert src.changes(before, src.snapshot()) == ["pinned CPU clock fell from 4200 to 3100 MHz"]


def test_thermal_zones_fake_tree(tmp_path: Path) -> None:
    for i, (kind, milli) in enumerate((("x86_pkg_temp", "61000"), ("acpitz", "27800"), ("cv0-thermal", "-256000"))):
        write(tmp_path, f"/sys/class/thermal/thermal_zone{i}/type", kind + "\n")
        write(tmp_path, f"/sys/class/thermal/thermal_zone{i}/temp", milli + "\n")
    write(tmp_path, "/sys/class/thermal/thermal_zone10/type", "iwlwifi_1\n")  # unreadable temp
    src = ThermalSource(root=str(tmp_path))
    assert src.probe()["available"]
    snap = src.snapshot()
    assert snap["zones_c"] == {"thermal_zone0:x86_pkg_temp": 61.0, "thermal_zone1:acpitz": 27.8,
                               "thermal_zone2:cv0-thermal": None, "thermal_zone10:iwlwifi_1": None}
    assert snap["temp_c"] == 61.0 and src.hottest_c() == 61.0
    assert ThermalSource(root=str(tmp_path / "none")).probe()["available"] is False


def test_meminfo_used() -> None:
    text = "MemTotal:       16318412 kB\nMemFree:         1000000 kB\nMemAvailable:   12222220 kB\n"
    assert used_mb(text) == pytest.approx((16318412 - 12222220) / 1024, abs=0.1)
    assert used_mb("MemTotal: 1 kB\n") is None


def test_this_machine_reads_without_error() -> None:
    """The real /sys/class/thermal (possibly empty in a VM) and /proc/meminfo."""
    thermal = ThermalSource()
    probe = thermal.probe()
    snap = thermal.snapshot()
    assert isinstance(snap["zones_c"], dict)
    assert probe["available"] == bool(snap["zones_c"])
    if snap["temp_c"] is not None:
        assert -50.0 < snap["temp_c"] < 150.0
    mem = MemorySource()
    assert mem.probe()["available"], mem.probe()["reason"]
    assert mem.snapshot()["ram_used_mb"] > 0
    cpu = CpufreqSource()
    assert isinstance(cpu.probe()["available"], bool) and isinstance(cpu.snapshot()["freq_mhz"], dict)
