"""``tflite-int8``: full-integer post-training quantization, int8 inputs and outputs.

``ai_edge_quantizer``'s ``static_wi8_ai8`` recipe: weights int8 symmetric per channel,
activations int8 asymmetric per tensor with ranges from min/max calibration over the
source's calibration split (the first ``num_calibration_samples`` rows, as ``int8-static``
uses them; seeded standard-normal inputs when the model has none, logged). The model's
input and output tensors become int8 with their own scale and zero point, which the
runtime applies (quantize the float input, dequantize the output before accuracy), as a
microcontroller or NPU deployment would. The calibration method and data are written into
the file's metadata (``edge_harness.calibration``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from harness.variants.int8_static import calibration_batches
from harness.variants.tflite_convert import TfliteOptions, TfliteRecipe, calibration_feed, export, quantizer_for

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

log = logging.getLogger(__name__)


class TfliteInt8Options(TfliteOptions):
    calibration: Literal["minmax"] = "minmax"  # the quantizer's MIN_MAX_UNIFORM_QUANT
    num_calibration_samples: int = Field(256, ge=1)


class TfliteInt8(TfliteRecipe):
    name = "tflite-int8"
    precision = "int8"
    Options = TfliteInt8Options

    def finish(self, fp32: Path, workdir: Path, source: "SourceModel") -> tuple[Path, dict[str, str]]:
        from ai_edge_quantizer import recipe

        batches, origin = calibration_batches(source, self.options.num_calibration_samples)
        log.info("%s: calibrating on %s", self.label, origin)
        if source.calib_path is None:
            self.note_synthetic(f"calibrated on {origin}")
        q = quantizer_for(fp32)
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        ranges = q.calibrate(calibration_feed(fp32, batches))
        out = export(q.quantize(ranges), workdir / "int8.tflite")
        return out, {"calibration": f"{self.options.calibration} on {origin}"}
