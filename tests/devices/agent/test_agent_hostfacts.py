"""Host facts read from fake /proc, /sys and /etc trees (x86, Jetson, Pi) and from this machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from devices.agent import hostfacts


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def x86_tree(root: Path) -> Path:
    write(root, "/etc/os-release", 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\n')
    write(root, "/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n"
          "model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\n\nprocessor\t: 1\nmodel name\t: other\n")
    write(root, "/proc/meminfo", "MemTotal:       16318412 kB\nMemFree:         1000000 kB\n")
    write(root, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "powersave\n")
    write(root, "/sys/class/thermal/thermal_zone0/type", "x86_pkg_temp\n")
    write(root, "/sys/class/thermal/thermal_zone0/temp", "45000\n")
    write(root, "/sys/class/thermal/thermal_zone10/type", "acpitz\n")
    write(root, "/sys/class/thermal/thermal_zone10/temp", "27800\n")
    write(root, "/sys/class/thermal/thermal_zone2/type", "iwlwifi_1\n")  # no temp file: unreadable zone
    for zone, label in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core")):
        write(root, f"/sys/class/powercap/{zone}/name", label + "\n")
        write(root, f"/sys/class/powercap/{zone}/energy_uj", "123456789\n")
    write(root, "/sys/class/hwmon/hwmon0/name", "coretemp\n")  # not a power sensor
    return root


def test_x86_with_readable_rapl(tmp_path: Path) -> None:
    facts = hostfacts.collect(str(x86_tree(tmp_path)), path="")
    assert facts["os"] == "Ubuntu 22.04.4 LTS"
    assert facts["cpu_model"] == "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz"
    assert facts["ram_mib"] == 16318412 // 1024
    assert facts["governor"] == "powersave"
    assert facts["thermal_zones"] == [
        {"zone": "thermal_zone0", "type": "x86_pkg_temp", "temp_c": 45.0},
        {"zone": "thermal_zone2", "type": "iwlwifi_1", "temp_c": None},
        {"zone": "thermal_zone10", "type": "acpitz", "temp_c": 27.8},
    ]
    assert facts["power_sensors"] == [
        {"source": "rapl", "name": "intel-rapl:0", "label": "package-0", "readable": True},
        {"source": "rapl", "name": "intel-rapl:0:0", "label": "core", "readable": True},
    ]
    assert facts["board_model"] is None and facts["jetson_model"] is None


def test_x86_with_root_only_rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Since Linux 5.10 energy_uj is root-only: the zone is listed, marked unreadable."""
    root = x86_tree(tmp_path)
    for energy in root.glob("sys/class/powercap/*/energy_uj"):
        energy.chmod(0)
    real_open = open

    def denying_open(path: str, *args: object, **kwargs: object):  # noqa: ANN202 - root ignores chmod 0
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(hostfacts, "open", denying_open, raising=False)
    sensors = hostfacts.power_sensors(str(root), path="")
    assert [(s["name"], s["readable"]) for s in sensors] == [("intel-rapl:0", False), ("intel-rapl:0:0", False)]
    assert hostfacts.governor(str(root)) == "powersave"  # other files still read


def test_jetson_tree(tmp_path: Path) -> None:
    root = tmp_path
    write(root, "/proc/device-tree/model", "NVIDIA Jetson Orin Nano Developer Kit\x00")
    write(root, "/proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 62.50\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n")
    write(root, "/etc/os-release", "PRETTY_NAME='Ubuntu 20.04.6 LTS'\n")
    write(root, "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "schedutil")
    for i, (kind, milli) in enumerate((("cpu-thermal", "47937"), ("gpu-thermal", "45875"), ("cv0-thermal", "-256000"))):
        write(root, f"/sys/class/thermal/thermal_zone{i}/type", kind + "\n")
        write(root, f"/sys/class/thermal/thermal_zone{i}/temp", milli + "\n")
    write(root, "/sys/class/hwmon/hwmon1/name", "ina3221\n")
    write(root, "/sys/class/hwmon/hwmon1/in1_label", "VDD_IN\n")
    write(root, "/sys/class/hwmon/hwmon0/name", "soctherm_oc\n")
    bin_dir = root / "usr-bin"
    write(bin_dir, "tegrastats", "#!/bin/sh\n").chmod(0o755)
    facts = hostfacts.collect(str(root), path=str(bin_dir))
    assert facts["jetson_model"] == facts["board_model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert facts["cpu_model"] is None  # arm64 cpuinfo has no model name
    assert facts["os"] == "Ubuntu 20.04.6 LTS" and facts["governor"] == "schedutil"
    assert [(z["type"], z["temp_c"]) for z in facts["thermal_zones"]] == [
        ("cpu-thermal", 47.9), ("gpu-thermal", 45.9), ("cv0-thermal", None)]  # -256 C: offline
    assert [(s["source"], s["name"]) for s in facts["power_sensors"]] == [("hwmon", "ina3221"),
                                                                          ("command", "tegrastats")]


def test_pi_cpuinfo_model(tmp_path: Path) -> None:
    write(tmp_path, "/proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\n"
          "Revision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    write(tmp_path, "/proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\x00")
    write(tmp_path, "/sys/class/hwmon/hwmon2/name", "ina2xx\n")
    bin_dir = tmp_path / "bin"
    write(bin_dir, "vcgencmd", "#!/bin/sh\n").chmod(0o755)
    facts = hostfacts.collect(str(tmp_path), path=str(bin_dir))
    assert facts["cpu_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert facts["board_model"] == "Raspberry Pi 4 Model B Rev 1.4" and facts["jetson_model"] is None
    assert [s["name"] for s in facts["power_sensors"]] == ["ina2xx", "vcgencmd"]
    write(tmp_path, "/proc/cpuinfo", "processor\t: 0\nHardware\t: BCM2835\n")
    assert hostfacts.cpu_model(str(tmp_path)) == "BCM2835"


def test_missing_everything_gives_nulls(tmp_path: Path) -> None:
    facts = hostfacts.collect(str(tmp_path / "empty"), path="")
    for key in ("os", "cpu_model", "ram_mib", "governor", "board_model", "jetson_model"):
        assert facts[key] is None, key
    assert facts["thermal_zones"] == [] and facts["power_sensors"] == []
    assert facts["arch"] == (platform.machine() or None) and facts["cores"] == os.cpu_count()


def test_garbage_files_give_nulls(tmp_path: Path) -> None:
    write(tmp_path, "/proc/meminfo", "MemTotal: lots\n")
    write(tmp_path, "/sys/class/thermal/thermal_zone0/temp", "n/a\n")
    (tmp_path / "etc" / "os-release").mkdir(parents=True)  # a directory where a file should be
    assert hostfacts.ram_total_mib(str(tmp_path)) is None
    assert hostfacts.thermal_zones(str(tmp_path)) == [{"zone": "thermal_zone0", "type": None, "temp_c": None}]
    assert hostfacts.os_name(str(tmp_path)) is None


def test_this_machine() -> None:
    facts = hostfacts.collect()
    assert facts["arch"] and facts["kernel"] and facts["python"] == platform.python_version()
    assert isinstance(facts["thermal_zones"], list) and isinstance(facts["power_sensors"], list)


def test_probe_event_carries_host_facts() -> None:
    import io
    import json

    from devices.agent.cli import main

    buf = io.StringIO()
    assert main(["probe", "--runtimes", "sleep"], out=buf) == 0
    event = json.loads(buf.getvalue())
    assert event["event"] == "facts" and event["host"]["arch"] and "sleep" in event["runtimes"]
