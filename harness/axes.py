"""The suite's sweepable axes (``axes:``): each multiplies the jobs, and each value is part of
a job's identity (``JobSettings.axes``, its key, its operating point ``JobSettings.point``).

One table, ``AXES``: an axis's name (its key under ``axes:``, a field of
``harness.config.suite.Axes``), what a value changes in what the board is sent (``apply``:
threads and inflight are ``measure`` keys), and whether it shapes the model's input (batch and
resolution: the variant is built at that shape, ``harness.coordinator.builds``). A new axis (a
power mode, say) is a row here and a field there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from devices.agent.measurespec import MeasureSettings
from harness.records import JobSettings


@dataclass(frozen=True)
class Axis:
    name: str
    apply: Callable[[MeasureSettings, Any], MeasureSettings] | None = None  # None: the board is sent nothing new
    shapes: bool = False  # a value changes the model's input shape: the variant is built per value


AXES: dict[str, Axis] = {
    "batch": Axis("batch", shapes=True),
    "inflight": Axis("inflight", lambda m, v: replace(m, inflight=int(v))),
    "resolution": Axis("resolution", shapes=True),
    "threads": Axis("threads", lambda m, v: replace(m, threads=int(v))),
}


def expand(settings: JobSettings, axes: Mapping[str, Sequence[Any]] | None) -> list[JobSettings]:
    """``settings`` at every combination of the axes' values (axes by name, the first varying
    slowest); ``[settings]`` itself without axes, so a suite without ``axes:`` plans as before."""
    if not axes:
        return [settings]
    names = sorted(axes)
    out = []
    for values in itertools.product(*(axes[name] for name in names)):
        measure = settings.measure
        for name, value in zip(names, values, strict=True):
            if AXES[name].apply is not None:
                measure = AXES[name].apply(measure, value)
        out.append(replace(settings, measure=measure, axes=tuple(zip(names, values, strict=True))))
    return out


def shape_point(axes: Sequence[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """The axis values of a job that shape its artifact (batch, resolution): () for the suite's own shape."""
    return tuple((name, value) for name, value in axes if AXES[name].shapes)


def reshaped(shape: Sequence[int], point: Sequence[tuple[str, Any]]) -> tuple[int, ...]:
    """An input shape (batch first; NCHW for a resolution: H and W are dimensions 2 and 3) at a
    job's batch and resolution."""
    out = [int(d) for d in shape]
    values = dict(point)
    if values.get("batch") is not None:
        out[0] = int(values["batch"])
    if values.get("resolution") is not None:
        out[2], out[3] = (int(d) for d in values["resolution"])
    return tuple(out)


def build_key(model: str, variant: str, axes: Sequence[tuple[str, Any]]) -> tuple[Any, ...]:
    """The key a job's built variant is found by: (model, variant), and the axis values that
    shape the artifact after them (``harness.coordinator.builds.build_all`` builds one per key)."""
    return (model, variant, *shape_point(axes))


def reshaped_source(source: Any, point: Sequence[tuple[str, Any]]) -> Any:
    """A ``SourceModel`` at a shape point: its input shape reshaped (the build's cache key holds the
    shape, so each point is its own artifact). Away from its own resolution its eval and
    calibration data (of the model's own size) are left out: no accuracy is measured there, and
    int8 calibrates on seeded synthetic inputs (the variant is marked synthetic)."""
    if not point:
        return source
    shape = reshaped(source.input_shape, point)
    named = source.input_shapes
    changes: dict[str, Any] = {"input_shape": shape}
    if named:
        changes["input_shapes"] = {next(iter(named)): shape}
    if dict(point).get("resolution") is not None and tuple(shape[2:4]) != tuple(source.input_shape[2:4]):
        changes.update(eval_path=None, calib_path=None)
    return replace(source, **changes)
