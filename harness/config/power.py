"""Power modes in config files: a named board state a suite sweeps (``power_modes:``).

A mode is defined per board in the inventory (a device's, or the inventory's ``defaults``'
``power_modes: {name: definition}``) or in the suite (``power_modes: {name: definition}``);
the suite's ``power_modes`` is also the axis: every job is measured once in each mode it
names (``harness.powermodes`` resolves each name per board). The board's agent applies the
mode before the job and restores the board after it (``devices/agent/power/``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from devices.agent import spec as wire
from harness.config.yamlio import Strict

# The governors of mainline Linux (drivers/cpufreq) and the vendor kernels' "interactive".
Governor = Literal["performance", "powersave", "schedutil", "ondemand", "conservative", "userspace", "interactive"]
ModeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")]


class CpufreqSetting(Strict):
    """What every CPU's cpufreq policy is set to (sysfs ``scaling_governor``,
    ``scaling_min_freq``, ``scaling_max_freq``); the board refuses a governor it does not offer
    and a frequency outside its ``cpuinfo_min_freq``..``cpuinfo_max_freq``."""

    governor: Governor | None = Field(None, description="The CPU frequency governor; null: left as it is.")
    min_freq_khz: int | None = Field(None, gt=0, description="Lowest CPU clock, kHz; null: left as it is.")
    max_freq_khz: int | None = Field(None, gt=0, description="Highest CPU clock, kHz; null: left as it is.")

    @model_validator(mode="after")
    def _sets_something(self) -> CpufreqSetting:
        if self.governor is None and self.min_freq_khz is None and self.max_freq_khz is None:
            raise ValueError("cpufreq sets nothing: give governor, min_freq_khz or max_freq_khz")
        if self.min_freq_khz is not None and self.max_freq_khz is not None and self.min_freq_khz > self.max_freq_khz:
            raise ValueError(f"min_freq_khz {self.min_freq_khz} is above max_freq_khz {self.max_freq_khz}")
        return self


class PowerModeDef(Strict):
    """``{cpufreq: {governor: powersave, max_freq_khz: 1200000}}``, ``{nvpmodel: 2}``,
    ``{cpufreq: {governor: performance}, jetson_clocks: true}``: a board state, applied before
    each job (nvpmodel, then jetson_clocks, then cpufreq) and restored after it. Changing it
    needs the agent to run as root on the board."""

    cpufreq: CpufreqSetting | None = Field(None, description="CPU governor and clock limits, on every CPU.")
    nvpmodel: int | None = Field(None, ge=0, description="Jetson: the nvpmodel mode id ('nvpmodel -m ID').")
    jetson_clocks: bool = Field(False, description="Jetson: lock the clocks at the mode's maximum (jetson_clocks).")
    settle_s: float | None = Field(
        None, ge=0, le=600, description="Wait after applying the mode; null: 2 s with nvpmodel, 1 s with "
        "jetson_clocks, none for cpufreq alone.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _sets_something(self) -> PowerModeDef:
        if self.cpufreq is None and self.nvpmodel is None and not self.jetson_clocks:
            raise ValueError("a power mode sets nothing: give cpufreq, nvpmodel or jetson_clocks: true")
        return self

    def to_wire(self, name: str) -> wire.PowerMode:
        c = self.cpufreq
        return wire.PowerMode(
            name=name, cpufreq=c and wire.CpufreqMode(c.governor, c.min_freq_khz, c.max_freq_khz),
            nvpmodel=self.nvpmodel, jetson_clocks=self.jetson_clocks, settle_s=self.settle_s,
        )  # fmt: skip


def _distinct(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"power mode {name!r} is listed twice")
    return names


def _modes_kind(value: Any) -> str:
    return "modes[mapping]" if isinstance(value, dict) else "modes[list]"  # "[...]": left out of error paths


# The suite's axis: names the inventory defines per board, or {name: definition or null (the board's own)}.
PowerModeAxis = Annotated[
    Union[
        Annotated[tuple[ModeName, ...], Field(min_length=1), AfterValidator(_distinct), Tag("modes[list]")],
        Annotated[dict[ModeName, Union[PowerModeDef, None]], Field(min_length=1), Tag("modes[mapping]")],
    ],
    Discriminator(_modes_kind),
]
POWER_MODES_DOC = (
    "Measure every job once in each of these power modes: a list of names each board defines in the inventory, "
    "or {name: definition} (null: the board's own definition of that name). Absent: the boards as they are.")
BOARD_MODES_DOC = "Power modes of this board by name, for suites that sweep them (a suite's own definition wins)."


def mode_names(axis: Any) -> tuple[str, ...]:
    """The names a suite's ``power_modes`` sweeps, in its order; () without."""
    return tuple(axis) if axis else ()
