"""Typed model of ``inventory.yaml``: the fleet, how to reach each board, what it offers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from harness.config.names import check_runtimes
from harness.config.power import BOARD_MODES_DOC, ModeName, PowerModeDef
from harness.config.yamlio import Strict, line_of, load_yaml, validate
from harness.errors import InventoryError

DeviceKind = Literal["jetson", "pi", "x86", "local", "generic"]
RuntimeNames = Annotated[tuple[str, ...], AfterValidator(check_runtimes)]
PowerSource = Literal["auto", "ina3221", "tegrastats", "pi5-pmic", "ina2xx", "rapl", "nvml", "command", "none"]


class PowerConfig(Strict):
    """Where the board's power and energy readings come from (docs/measurement.md, "Telemetry").
    ``harness inventory check`` lists every source with why it is or is not usable; a board
    without one still measures everything but energy."""

    source: PowerSource = Field("auto", description="Where power/energy readings come from (auto: the first found).")
    command: str | None = Field(None, description="For source 'command': an external meter printing one reading.")
    unit: Literal["W", "J"] = Field("W", description="What the command prints: watts now, or joules so far.")


class Cooldown(Strict):
    """Waiting for a hot board to cool before each job. Give ``max_temp_c``, or ``idle_temp_c``
    with ``delta_c``, or both (then the higher of the two temperatures is the target); the wait
    is recorded with the result, and running out of ``max_wait_s`` is not an error."""

    max_temp_c: float | None = Field(None, description="Wait before a job until the hottest zone is below this.")
    idle_temp_c: float | None = Field(None, description="The board's idle temperature, for delta_c.")
    delta_c: float | None = Field(None, ge=0, description="Or wait until within this many degrees of idle_temp_c.")
    max_wait_s: float = Field(120.0, ge=0, le=86400.0, description="Give up waiting (and record it) after this long.")


class Connection(Strict):
    """Fields a device may take from ``defaults``."""

    user: str | None = Field(
        None, description="SSH user; absent: the host's User in ~/.ssh/config, else your local user name."
    )
    port: int | None = Field(None, ge=1, le=65535, description="SSH port.")
    key: str | None = Field(
        None, description="Private key file; absent: the host's IdentityFile in ~/.ssh/config, else the "
        "ssh-agent and the default keys in ~/.ssh."
    )
    python: str | None = Field(
        None, description="Python on the board that runs the agent (kind local: the coordinator's own unless set)."
    )
    workdir: str | None = Field(None, description="Everything the harness writes on a board lives here, but its "
                                "lease (the board's own, in /tmp/edge-harness-<uid>: see fleet.md).")
    host_key_policy: Literal["strict", "accept-new"] | None = Field(
        None, description="strict: known_hosts only; accept-new: record unknown keys (explicit opt-in)."
    )
    known_hosts: str | None = Field(None, description="known_hosts file used to verify host keys.")
    power_modes: dict[ModeName, PowerModeDef] | None = Field(None, description=BOARD_MODES_DOC)


DEFAULTS = {
    "port": 22,
    "python": "python3",
    "workdir": "~/.cache/edge-harness",
    "host_key_policy": "strict",
    "known_hosts": "~/.ssh/known_hosts",
}


class Device(Connection):
    """One board: how to reach it and what it offers. Keys it leaves unset come from the
    inventory's ``defaults``, then from the built-in defaults shown."""

    # Any printable name but commas (`--devices a,b` splits on them): names never reach a shell unquoted.
    name: str = Field(..., min_length=1, pattern=r"^[^,\x00-\x1f\x7f]+$", description="Unique device name.")
    kind: DeviceKind = Field(
        ..., description="What the board is (a suite selects by it: devices: {kinds: [pi]}). local: the "
        "coordinator's own machine, run without SSH; any other kind is reached over SSH and needs a host."
    )
    host: str | None = Field(None, description="Address or ~/.ssh/config alias (not for kind local).")
    runtimes: RuntimeNames = Field(..., min_length=1, description="Runtimes this board offers.")
    site: str | None = Field(None, description="Drive this board from the Ray node with resource site:<site>.")
    pool: str | None = Field(
        None, min_length=1, pattern=r"^[^,\x00-\x1f\x7f]+$",
        description="Interchangeable boards share a pool: a job runs once on any free member, and moves to "
                    "another member if its board drops. Results are filed under the pool's name.",
    )
    tags: tuple[str, ...] = Field((), description="Free labels for selecting boards in suites.")
    power: PowerConfig = Field(default_factory=PowerConfig, description="Power measurement source.")
    cooldown: Cooldown = Field(default_factory=Cooldown, description="Thermal cooldown between jobs.")

    @model_validator(mode="after")
    def _host_needed(self) -> Device:
        if self.kind != "local" and not self.host:
            raise ValueError(f"device {self.name!r} of kind {self.kind!r} needs a 'host'")
        return self


class Inventory(Strict):
    """The fleet. Device names are unique, and no pool may take a device's name (results are
    filed under either)."""

    defaults: Connection = Field(default_factory=Connection, description="Applied to every device.")
    devices: tuple[Device, ...] = Field(..., min_length=1, description="The boards.")

    @field_validator("devices")
    @classmethod
    def _unique(cls, devices: tuple[Device, ...]) -> tuple[Device, ...]:
        seen: set[str] = set()
        for d in devices:
            if d.name in seen:
                raise ValueError(f"duplicate device name {d.name!r}")
            seen.add(d.name)
        return devices

    def resolved(self) -> tuple[Device, ...]:
        """Devices with ``defaults`` (then built-in defaults) filled into unset fields."""
        base = {**DEFAULTS, **{k: v for k, v in self.defaults if v is not None}}  # typed values, not dumps
        return tuple(d.model_copy(update={k: v for k, v in base.items() if getattr(d, k) is None and
                                          not (k == "python" and d.kind == "local")}) for d in self.devices)


LOCAL_INVENTORY = Inventory(devices=(Device(name="local", kind="local", runtimes=("onnxruntime", "openvino", "litert")),))


def load_inventory(path: Path | None) -> Inventory:
    """The inventory at ``path``; without one, the embedded default: this machine alone."""
    if path is None:
        return LOCAL_INVENTORY
    data = load_yaml(path)
    _check_names(data, path)
    return validate(Inventory, data, path)


def _check_names(data: Any, path: Path) -> None:
    """Device names are unique and no pool takes a device's name (results are filed under
    either). The model rejects duplicates too, but only the file knows the offending line."""
    devices = data.get("devices") if isinstance(data, dict) else None
    entries = [d if isinstance(d, dict) else {} for d in (devices if isinstance(devices, list) else ())]
    names = {d.get("name") for d in entries if isinstance(d.get("name"), str)}  # the model reports the rest
    seen: set[str] = set()
    for i, dev in enumerate(entries):
        name, pool = dev.get("name"), dev.get("pool")
        if isinstance(name, str) and name in seen:
            line = line_of(data, ("devices", i, "name"))
            raise InventoryError(f"duplicate device name {name!r}", location=f"{path}:{line}", field=f"devices.{i}.name")
        if isinstance(name, str):
            seen.add(name)
        if isinstance(pool, str) and pool in names:
            line = line_of(data, ("devices", i, "pool"))
            raise InventoryError(f"pool {pool!r} has the name of a device; name the pool differently",
                                 location=f"{path}:{line}", field=f"devices.{i}.pool")
