"""The tegrastats parser against real-format lines published in public test suites (named beside each),
and the tegrastats stream through the sampler."""

from __future__ import annotations

import threading
import time

import pytest

from devices.agent.telemetry.sampler import Sampler
from devices.agent.telemetry.tegrastats import TegrastatsSource, parse_line

# Recorded real output: Nano, JetPack 4, with sudo (DataDog datadog-agent,
# pkg/collector/corechecks/nvidia/jetson/jetson_test.go).
NANO_JP4 = ("RAM 534/3964MB (lfb 98x4MB) SWAP 5/1982MB (cached 1MB) IRAM 0/252kB(lfb 252kB) "
            "CPU [16%@204,9%@204,0%@204,0%@204] EMC_FREQ 0%@204 GR3D_FREQ 0%@76 APE 25 PLL@34C CPU@36.5C "
            "PMIC@100C GPU@36C AO@39.5C thermal@36.25C POM_5V_IN 1022/1022 POM_5V_GPU 0/0 POM_5V_CPU 204/204")
# Recorded real output: AGX Xavier, JetPack 4 (same source; its RAM/CPU head elided there).
XAVIER_JP4 = ("... EMC_FREQ 0%@665 GR3D_FREQ 0%@318 APE 150 MTS fg 0% bg 0% AO@37.5C GPU@37.5C Tdiode@40C "
              "PMIC@100C AUX@36C CPU@37.5C thermal@36.9C Tboard@37C GPU 0/0 CPU 311/311 SOC 932/932 CV 0/0 "
              "VDDRQ 621/621 SYS5V 1482/1482")
# Recorded real output: Xavier NX, JetPack 4 (same source).
XAVIER_NX_JP4 = "... VDD_IN 4067/4067 VDD_CPU_GPU_CV 738/738 VDD_SOC 1353/1353"
# Recorded real output: Orin NX, JetPack 5 (same source; units present, CPU cores `off`).
ORIN_NX_JP5 = ("RAM 6334/15388MB (lfb 1770x4MB) SWAP 491/7694MB (cached 0MB) "
               "CPU [6%@729,9%@729,5%@729,16%@729,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@611 VIC_FREQ 729 "
               "APE 174 CV0@45.812C CPU@47.937C SOC2@46.093C SOC0@46.968C CV1@46.406C GPU@45.875C tj@48.875C "
               "SOC1@48.875C CV2@45.75C VDD_IN 5299mW/5299mW VDD_CPU_GPU_CV 773mW/773mW VDD_SOC 1424mW/1424mW")
# Recorded real output: AGX Orin, JetPack 6 (per-GPC GPU frequency array, lower-case sensor names).
AGX_ORIN_JP6 = ("... EMC_FREQ 1%@2133 GR3D_FREQ 0%@[305,305] NVENC off NVDEC off ... APE 174 cpu@53.062C "
                "soc2@48.25C soc0@48.843C gpu@47.812C tj@53.062C soc1@48.968C VDD_GPU_SOC 3205mW/3205mW "
                "VDD_CPU_CV 4405mW/4405mW VIN_SYS_5V0 4767mW/4767mW")
# Recorded real output: Orin, JetPack 7 (rbonghi/jetson_stats tests/test_06_tegra_parse.py), the rail field.
JP7_RAIL = "VDD_GPU_SOC 5139mW/5139mW/5139mW"


def test_nano_jp4_rails_temps_ram_cpu_gpu() -> None:
    p = parse_line(NANO_JP4)
    assert p["rails_mw"] == {"POM_5V_IN": 1022, "POM_5V_GPU": 0, "POM_5V_CPU": 204}
    assert p["total"] == "POM_5V_IN" and p["power_w"] == pytest.approx(1.022)
    assert p["temps_c"] == {"PLL": 34.0, "CPU": 36.5, "GPU": 36.0, "AO": 39.5, "thermal": 36.25}  # PMIC@100C dropped
    assert p["temp_max_c"] == 39.5
    assert (p["ram_used_mb"], p["ram_total_mb"]) == (534, 3964)
    assert p["cpu"] == [{"load_pct": 16, "freq_mhz": 204}, {"load_pct": 9, "freq_mhz": 204},
                        {"load_pct": 0, "freq_mhz": 204}, {"load_pct": 0, "freq_mhz": 204}]
    assert (p["gpu_load_pct"], p["gpu_freq_mhz"], p["emc_freq_mhz"]) == (0, 76, 204)


def test_agx_xavier_sums_rails_and_keeps_cpu_rail_apart_from_cpu_temp() -> None:
    p = parse_line(XAVIER_JP4)
    assert p["rails_mw"] == {"GPU": 0, "CPU": 311, "SOC": 932, "CV": 0, "VDDRQ": 621, "SYS5V": 1482}
    assert p["total"] == "sum of rails" and p["power_w"] == pytest.approx(3.346)
    assert p["temps_c"]["CPU"] == 37.5 and p["temps_c"]["Tdiode"] == 40.0 and "PMIC" not in p["temps_c"]
    assert "APE" not in p["rails_mw"] and "MTS" not in p["rails_mw"]
    assert p["gpu_freq_mhz"] == 318 and p["ram_used_mb"] is None


def test_xavier_nx_total_is_vdd_in() -> None:
    p = parse_line(XAVIER_NX_JP4)
    assert p["total"] == "VDD_IN" and p["power_w"] == pytest.approx(4.067)
    assert p["rails_avg_mw"]["VDD_SOC"] == 1353


def test_orin_nx_jp5_units_and_offline_cores() -> None:
    p = parse_line(ORIN_NX_JP5)
    assert p["rails_mw"] == {"VDD_IN": 5299, "VDD_CPU_GPU_CV": 773, "VDD_SOC": 1424}
    assert p["power_w"] == pytest.approx(5.299)
    assert p["cpu"][4:] == [None, None, None, None] and p["cpu"][3] == {"load_pct": 16, "freq_mhz": 729}
    assert p["temps_c"]["tj"] == 48.875 and len(p["temps_c"]) == 9
    assert (p["ram_used_mb"], p["gpu_freq_mhz"], p["emc_freq_mhz"]) == (6334, 611, 2133)


def test_agx_orin_jp6_gpc_array_and_lower_case_sensors() -> None:
    p = parse_line(AGX_ORIN_JP6)
    assert p["gpu_freq_mhz"] == [305, 305] and p["gpu_load_pct"] == 0 and p["emc_load_pct"] == 1
    assert p["temps_c"]["cpu"] == 53.062 and p["temp_max_c"] == 53.062
    assert p["total"] == "sum of rails" and p["power_w"] == pytest.approx(3.205 + 4.405 + 4.767)


def test_jp7_three_values_per_rail() -> None:
    p = parse_line(JP7_RAIL)
    assert p["rails_mw"] == {"VDD_GPU_SOC": 5139} and p["power_w"] == pytest.approx(5.139)


def test_timestamp_prefix_offline_sensor_and_no_root_frequencies() -> None:
    # Variants tegrastats prints (a JetPack 5+ timestamp, -256C for an offline sensor), built on the Orin NX line.
    stamped = "01-03-2023 16:10:22 " + ORIN_NX_JP5.replace("CV2@45.75C", "CV2@-256C")
    p = parse_line(stamped)
    assert p["power_w"] == pytest.approx(5.299) and p["ram_used_mb"] == 6334
    assert p["offline_sensors"] == ["CV2"] and "CV2" not in p["temps_c"]
    no_root = parse_line("RAM 534/3964MB CPU [16%,9%,off,0%] EMC_FREQ 0% GR3D_FREQ 12% POM_5V_IN 900/950")
    assert (no_root["gpu_load_pct"], no_root["gpu_freq_mhz"]) == (12, None)
    assert no_root["cpu"] == [{"load_pct": 16, "freq_mhz": None}, {"load_pct": 9, "freq_mhz": None}, None,
                              {"load_pct": 0, "freq_mhz": None}]
    assert no_root["power_w"] == pytest.approx(0.9)


def test_a_line_without_rails_has_no_power() -> None:
    p = parse_line("RAM 534/3964MB (lfb 98x4MB) SWAP 5/1982MB (cached 1MB) APE 25 PLL@34C")
    assert p["power_w"] is None and p["total"] is None and p["rails_mw"] == {}


class FakeStream:
    """Stands in for the tegrastats process: prints recorded lines every 20 ms until closed."""

    def __init__(self, argv: list, lines: list):
        self.argv = argv
        self._lines = lines
        self.closed = threading.Event()

    @property
    def lines(self):
        for line in self._lines:
            if self.closed.wait(0.02):
                return
            yield line
        self.closed.wait(5)

    def close(self) -> None:
        self.closed.set()


def test_tegrastats_stream_through_the_sampler() -> None:
    spawned: list = []

    def spawn(argv: list) -> FakeStream:
        spawned.append(FakeStream(argv, [NANO_JP4, ORIN_NX_JP5, "garbage", NANO_JP4]))
        return spawned[-1]

    src = TegrastatsSource(root="/nonexistent", runner=lambda argv: "", spawn=spawn)
    assert src.probe()["available"]  # a runner stands in for the tegrastats binary
    sampler = Sampler(src, period_s=0.05)
    sampler.start()
    time.sleep(0.8)  # the four lines take 80 ms; the rest is slack for a loaded machine
    window = sampler.stop()
    assert spawned[0].argv[-2:] == ["--interval", "50"] and spawned[0].closed.is_set()
    assert window["kind"] == "stream" and window["n_samples"] == 3  # the garbage line carries no rails
    mean_w = (1.022 + 5.299 + 1.022) / 3
    assert window["avg_power_w"] == pytest.approx(mean_w)
    assert window["peak_power_w"] == pytest.approx(5.299)
    assert window["energy_j"] == pytest.approx(mean_w * window["span_s"])
    assert src.details()["total"] == "POM_5V_IN"


def test_tegrastats_missing_is_a_reason() -> None:
    probe = TegrastatsSource(path="").probe()
    assert probe["available"] is False and "tegrastats" in probe["reason"]
