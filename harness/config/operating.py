"""Operating points in a suite: the sweepable ``axes:`` and the checks that tie them to the
measure settings and the models (docs/measurement.md, "Scenarios and axes").

``Axes`` has one field per row of ``harness.axes.AXES``; ``check_axes`` is the suite's check of
a combination (an inflight axis needs a scenario with requests in flight, a shape axis needs
models whose input shape can change), so a bad suite stops at load with its file and line.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from harness.config.yamlio import Strict

SINGLE = "single-stream"


def _values(low: int, high: int) -> Any:
    return Annotated[tuple[Annotated[int, Field(ge=low, le=high)], ...], Field(min_length=1)]


Resolution = Annotated[tuple[Annotated[int, Field(ge=1, le=16384)], Annotated[int, Field(ge=1, le=16384)]],
                       Field(description="[height, width]")]


class Axes(Strict):
    """``axes: {batch: [1, 4], threads: [1, 2], inflight: [1, 2, 4], resolution: [[160, 160], [224, 224]]}``:
    every job is measured at every combination of the values given (3 axes of 2 values: 8 jobs
    per model, variant, device and runtime). Each value is part of the job's identity (resume,
    gate and history tell them apart) and is stored with its result."""

    batch: _values(1, 4096) | None = Field(
        None, description="Input batch sizes: the variant is built (a torch model exported, an ONNX model's symbolic "
        "batch resolved) per batch; the model's eval set is fed in batches of it.",
    )  # fmt: skip
    inflight: _values(1, 1024) | None = Field(
        None, description="Requests in flight (needs a scenario other than single-stream: measure.scenario).")
    resolution: Annotated[tuple[Resolution, ...], Field(min_length=1)] | None = Field(
        None, description="Input [height, width] of 4-D NCHW inputs: built per size (torch models exported at it, an "
        "ONNX model's symbolic dimensions resolved to it); no accuracy is measured away from the model's own size.",
    )  # fmt: skip
    threads: _values(1, 1024) | None = Field(None, description="Inference threads (measure.threads per job).")

    @field_validator("*")
    @classmethod
    def _distinct(cls, values: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"a value is listed twice: {list(values)}")
        return values

    def values(self) -> dict[str, tuple[Any, ...]]:
        """The axes given, by name (``harness.axes.expand`` multiplies them)."""
        return {name: getattr(self, name) for name in type(self).model_fields if getattr(self, name) is not None}


def check_axes(axes: Axes | None, measure: Any, models: Any) -> None:
    """ValueError naming the first axis the suite's measure settings or models cannot take."""
    if axes is None:
        return
    scenario = measure.scenario or SINGLE
    if axes.inflight is not None:
        if scenario == SINGLE:
            raise ValueError("inflight: requests in flight need a scenario other than single-stream "
                             "(measure.scenario: offline, multi-stream or paced)")
        if measure.inflight is not None:
            raise ValueError("inflight: measure.inflight is set too; give the requests in flight in one place")
        if measure.p99_bound_ms is not None:
            raise ValueError("inflight: with measure.p99_bound_ms the offline search chooses the requests in flight; "
                             "drop the axis (measure.inflight caps the search)")
    if axes.threads is not None and measure.threads != "auto":
        raise ValueError("threads: measure.threads is set too; give the threads in one place")
    if axes.batch is None and axes.resolution is None:
        return
    for model in models or ():
        problem = _shape_problem(model, axes)
        if problem:
            raise ValueError(f"{'resolution' if axes.resolution is not None else 'batch'}: model {model.label!r} {problem}")


def _shape_problem(model: Any, axes: Axes) -> str | None:
    """Why ``model``'s input cannot take the shape axes, or None."""
    if hasattr(model, "tflite"):
        return "is a .tflite file, whose input shape is fixed: batch and resolution axes take builtin, factory and " \
               "onnx models"
    shape = getattr(model, "input_shape", None)
    if hasattr(model, "builtin"):
        from harness.zoo import MODELS

        shape = MODELS[model.builtin].input_shape
    if isinstance(shape, dict):
        if len(shape) > 1:
            return f"has {len(shape)} inputs; batch and resolution axes reshape one-input models"
        shape = next(iter(shape.values()))
    if axes.resolution is not None and len(tuple(shape)) != 4:
        return f"has input shape {list(shape)}; a resolution axis needs a 4-D NCHW input"
    return None
