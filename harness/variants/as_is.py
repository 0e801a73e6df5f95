"""``as-is`` and ``tflite-as-is``: the model measured exactly as it was given, whatever its precision.

The one rule for models that arrive already quantized or in float16 (``precision.py``): they
are not fp32, so ``fp32`` / ``tflite-fp32`` refuse them (as does every recipe that would
quantize or convert them again), and these recipes measure them instead. The variant's
recorded precision is the one read from the model (``int8``, ``fp16``, or ``fp32`` for a
float model: ``as-is`` is then the same graph as ``fp32``). ``as-is`` takes an ONNX model
(a torch model: its export); ``tflite-as-is`` a ``.tflite`` file (a torch model: its
float32 conversion, as ``tflite-fp32``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.variants.base import Recipe
from harness.variants.tflite_convert import TfliteRecipe

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel


class AsIs(Recipe):
    """Identity on the ONNX graph; its precision is recorded from the graph at build time."""

    name = "as-is"
    stage = "onnx"
    precision = None
    runtimes = None
    any_precision = True

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        return inp


class TfliteAsIs(TfliteRecipe):
    """The user's ``.tflite`` file unchanged (its bytes and hash stay theirs)."""

    name = "tflite-as-is"
    precision = None
    any_precision = True
