"""Raspberry Pi sources: vcgencmd output in the format Raspberry Pi OS prints it, the get_throttled
bits, and an INA219/INA226 through the kernel ina2xx hwmon driver (fake sysfs)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import pytest

from devices.agent import telemetry
from devices.agent.telemetry.ina2xx import Ina2xxSource
from devices.agent.telemetry.pi import PiSource, decode_throttled, parse_clock_mhz, parse_temp, parse_throttled
from devices.agent.telemetry.pi5_pmic import Pi5PmicSource, parse_pmic

# Output of `vcgencmd pmic_read_adc` on a Pi 5, in its format (an excerpt of its lines).
PMIC = """\
  VDD_CORE_A current(7)=1.11625000A
   3V3_SYS_A current(1)=0.08197812A
  VDD_CORE_V volt(15)=0.74944980V
     EXT5V_V volt(24)=5.08530000V
      BATT_V volt(25)=0.00000000V
"""
# Output of vcgencmd, in its format.
TEMP = "temp=52.0'C\n"
CLOCK_PI4 = "frequency(48)=1500398464\n"
CLOCK_PI5 = "frequency(0)=2400004352\n"
THROTTLED = "throttled=0x50000\n"


def test_pmic_pairs_current_with_voltage() -> None:
    p = parse_pmic(PMIC)
    assert p["rails_w"] == {"VDD_CORE": pytest.approx(1.11625 * 0.7494498)}  # 3V3_SYS has no _V line here
    assert p["power_w"] == pytest.approx(1.11625 * 0.7494498)
    assert p["volts_only"] == {"EXT5V": 5.0853, "BATT": 0.0}
    assert parse_pmic("error=1 error_msg=\"Command not registered\"")["power_w"] is None


def test_pmic_source_via_runner_and_not_a_pi5() -> None:
    calls = []

    def runner(argv: list) -> str:
        calls.append(argv)
        return PMIC

    src = Pi5PmicSource(runner=runner)
    assert src.probe()["available"] and src.min_period_ms >= 100
    assert src.read() == pytest.approx(0.8366, rel=1e-3)
    assert calls[0] == ["vcgencmd", "pmic_read_adc"]
    assert src.details()["volts_only"]["EXT5V"] == 5.0853
    pi4 = Pi5PmicSource(runner=lambda argv: "error=1 error_msg=\"Command not registered\"\n").probe()
    assert pi4["available"] is False and "no current/voltage pairs" in pi4["reason"]
    assert Pi5PmicSource(path="").probe()["reason"] == "vcgencmd not found on PATH"


def test_vcgencmd_parsers() -> None:
    assert parse_temp(TEMP) == 52.0
    assert parse_clock_mhz(CLOCK_PI4) == 1500.4 and parse_clock_mhz(CLOCK_PI5) == 2400.0
    assert parse_throttled(THROTTLED) == 0x50000
    assert decode_throttled(0x50000) == {"now": [], "sticky": ["under_voltage", "throttled"]}
    assert decode_throttled(0x0000F) == {"now": ["under_voltage", "arm_freq_capped", "throttled",
                                                 "soft_temp_limit"], "sticky": []}
    assert parse_temp("garbage") is None and parse_throttled("") is None


class pi_runner:
    """Recorded answers by argv; ``commands`` tells the sources which tools exist."""

    commands = ("vcgencmd",)

    def __init__(self, answers: Dict[Tuple[str, ...], str]):
        self.answers = answers

    def __call__(self, argv: list) -> str:
        return self.answers[tuple(argv)]


def replies(throttled: str) -> Dict[Tuple[str, ...], str]:
    return {("vcgencmd", "get_throttled"): throttled, ("vcgencmd", "measure_temp"): TEMP,
            ("vcgencmd", "measure_clock", "arm"): CLOCK_PI4}


def test_pi_state_and_throttle_decisions() -> None:
    answers = replies("throttled=0x0\n")
    src = PiSource(runner=pi_runner(answers))
    assert src.probe()["available"]
    clean = src.snapshot()
    assert clean == {"temp_c": 52.0, "arm_mhz": 1500.4, "throttled_raw": "0x0",
                     "throttled_bits": {"now": [], "sticky": []}}
    answers.update(replies(THROTTLED))  # sticky under-voltage + throttled appeared during the window
    after = src.snapshot()
    assert src.changes(clean, after) == ["Pi sticky throttle bits set during the window: throttled, under_voltage"]
    assert src.changes(after, after) == []  # old sticky bits are history, not this run
    answers.update(replies("throttled=0x50005\n"))
    assert src.changes(after, src.snapshot()) == ["Pi throttled now: throttled, under_voltage"]


def test_pi_state_keeps_going_when_one_query_fails() -> None:
    def run(argv: list) -> str:
        if argv[1] == "measure_temp":
            raise RuntimeError("vcgencmd exited with 255: VCHI initialization failed")
        return replies(THROTTLED)[tuple(argv)]

    snap = PiSource(runner=run).snapshot()
    assert snap["temp_c"] is None and snap["arm_mhz"] == 1500.4 and snap["throttled_raw"] == "0x50000"
    assert "VCHI" in snap["errors"][0]


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_ina2xx_power_file_or_v_times_i(tmp_path: Path) -> None:
    write(tmp_path, "/sys/class/hwmon/hwmon0/name", "ina3221\n")  # a Jetson monitor: not ina2xx's
    write(tmp_path, "/sys/class/hwmon/hwmon2/name", "ina219\n")
    write(tmp_path, "/sys/class/hwmon/hwmon2/power1_input", "2500000\n")  # uW
    write(tmp_path, "/sys/class/hwmon/hwmon10/name", "ina226\n")
    write(tmp_path, "/sys/class/hwmon/hwmon10/in1_input", "5000\n")  # mV
    write(tmp_path, "/sys/class/hwmon/hwmon10/curr1_input", "400\n")  # mA
    src = Ina2xxSource(root=str(tmp_path))
    assert src.probe()["available"]
    assert src.read() == pytest.approx(4.5)
    assert src.details() == {"monitors_w": {"hwmon2/ina219": 2.5, "hwmon10/ina226": 2.0}}


def test_ina2xx_absent(tmp_path: Path) -> None:
    probe = Ina2xxSource(root=str(tmp_path)).probe()
    assert probe["available"] is False and "ina2xx" in probe["reason"]


def test_auto_on_a_pi5_picks_the_pmic() -> None:
    answers = replies(THROTTLED)
    answers[("vcgencmd", "pmic_read_adc")] = PMIC
    source, reason, probes = telemetry.pick_power("auto", root="/nonexistent", runner=pi_runner(answers))
    assert source is not None and source.name == "pi5-pmic" and reason is None
    assert [(p["name"], p["available"]) for p in probes] == [("ina3221", False), ("tegrastats", False),
                                                             ("pi5-pmic", True)]
    assert [s.name for s in telemetry.state_sources(root="/nonexistent", runner=pi_runner(answers))] == ["pi"]
