"""Fake boards for power-mode tests: a cpufreq sysfs tree laid out as the kernel's
(``/sys/devices/system/cpu/cpuN/cpufreq/``), and ``nvpmodel`` / ``jetson_clocks`` as shell
scripts that keep their state in files, record every call, and print what the real tools
print (``nvpmodel -q``: ``NV Power Mode: MAXN`` then the mode id)."""

from __future__ import annotations

from pathlib import Path

GOVERNORS = "conservative ondemand userspace powersave performance schedutil"
CPUINFO = (115200, 1510400)  # Orin Nano's cpuinfo_min_freq / cpuinfo_max_freq, kHz
MODE_NAMES = {0: "MAXN", 1: "10W", 2: "15W", 3: "7W"}


def cpu_dir(root: Path, cpu: int) -> Path:
    return root / "sys" / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq"


def cpufreq_tree(root: Path, cpus: int = 4, governor: str = "schedutil", lo: int = CPUINFO[0],
                 hi: int = CPUINFO[1], governors: str = GOVERNORS) -> Path:
    """``cpus`` CPUs with a cpufreq policy each, in ``governor`` between ``lo`` and ``hi`` kHz."""
    for i in range(cpus):
        d = cpu_dir(root, i)
        d.mkdir(parents=True, exist_ok=True)
        values = {"scaling_governor": governor, "scaling_available_governors": governors,
                  "scaling_min_freq": lo, "scaling_max_freq": hi, "scaling_cur_freq": hi,
                  "cpuinfo_min_freq": CPUINFO[0], "cpuinfo_max_freq": CPUINFO[1]}
        for name, value in values.items():
            (d / name).write_text(f"{value}\n")
    (root / "sys" / "devices" / "system" / "cpu" / "cpu0" / "topology").mkdir(exist_ok=True)
    return root


def state(root: Path, cpus: int = 4) -> list[tuple[str, int, int]]:
    """Each CPU's (governor, scaling_min_freq, scaling_max_freq)."""
    out = []
    for i in range(cpus):
        d = cpu_dir(root, i)
        out.append(((d / "scaling_governor").read_text().strip(), int((d / "scaling_min_freq").read_text()),
                    int((d / "scaling_max_freq").read_text())))
    return out


def fake_tools(tmp: Path, root: Path, mode: int = 0, stuck: bool = False) -> tuple[Path, Path]:
    """(bin directory, call log): ``nvpmodel`` in mode ``mode`` (``stuck``: ``-m`` does not take,
    as for a mode that needs a reboot) and ``jetson_clocks``, which locks every CPU of the fake
    tree (scaling_min_freq = scaling_max_freq) and stores / restores the minimums."""
    bin_dir, log = tmp / "bin", tmp / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    state_file = tmp / "nvpmodel.state"
    state_file.write_text(f"{mode}\n")
    names = "\n".join(f"  {k}) name={v} ;;" for k, v in MODE_NAMES.items())
    set_mode = ":" if stuck else f'echo "$2" > "{state_file}"'
    nvpmodel = f"""#!/bin/sh
echo "nvpmodel $*" >> "{log}"
id=$(cat "{state_file}")
case "$id" in
{names}
  *) name="MODE_$id" ;;
esac
case "$1" in
  -q) echo "NV Power Mode: $name"; echo "$id" ;;
  -m) {set_mode} ;;
  *) echo "usage: nvpmodel -q | -m ID" >&2; exit 1 ;;
esac
"""
    cpus = root / "sys" / "devices" / "system" / "cpu"
    clocks = f"""#!/bin/sh
echo "jetson_clocks $*" >> "{log}"
case "$1" in
  --store) : > "$2"; for d in "{cpus}"/cpu*/cpufreq; do echo "$d $(cat "$d/scaling_min_freq")" >> "$2"; done ;;
  --restore) while read -r d lo; do echo "$lo" > "$d/scaling_min_freq"; done < "$2" ;;
  "") for d in "{cpus}"/cpu*/cpufreq; do cat "$d/scaling_max_freq" > "$d/scaling_min_freq"; done ;;
  *) exit 1 ;;
esac
"""
    for name, text in (("nvpmodel", nvpmodel), ("jetson_clocks", clocks)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log.write_text("")
    return bin_dir, log


def calls(log: Path) -> list[str]:
    return [line.rstrip() for line in log.read_text().splitlines()]


def nvpmodel_mode(tmp: Path) -> int:
    return int((tmp / "nvpmodel.state").read_text())
