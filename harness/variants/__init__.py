"""Compression recipes and content-addressed variant builds.

``RECIPES`` maps a recipe name (as written in a suite's ``variants``) to a ``Preset``: its
class and the options the name stands for. Adding a recipe is one new module and a line
here. Cheap to import (no torch, onnx or
runtimes): config validation reads ``RECIPES`` to check names.
"""

from harness.variants.as_is import AsIs, TfliteAsIs
from harness.variants.base import Preset, Recipe, RecipeOptions
from harness.variants.build import Variant, build_variant
from harness.variants.cache import ArtifactCache
from harness.variants.distill import Distill
from harness.variants.fp16 import Fp16
from harness.variants.fp32 import Fp32
from harness.variants.int8_dynamic import Int8Dynamic
from harness.variants.int8_mixed import Int8Mixed
from harness.variants.int8_static import Int8Static
from harness.variants.ov_int8 import OvInt8
from harness.variants.prune_channels import PruneChannels
from harness.variants.prune_l1 import PruneL1
from harness.variants.tflite_fp16 import TfliteFp16
from harness.variants.tflite_fp32 import TfliteFp32
from harness.variants.tflite_int8 import TfliteInt8

RECIPES: dict[str, Preset] = {
    "fp32": Preset(Fp32),
    "as-is": Preset(AsIs),
    "int8-dynamic": Preset(Int8Dynamic),
    "fp16": Preset(Fp16),
    "int8-static": Preset(Int8Static, calibration="minmax"),
    "int8-static-entropy": Preset(Int8Static, calibration="entropy"),
    "int8-static-percentile": Preset(Int8Static, calibration="percentile"),
    "int8-mixed": Preset(Int8Mixed),
    "ov-int8": Preset(OvInt8),
    "prune-l1": Preset(PruneL1, amount=0.5),
    "prune-l1-30": Preset(PruneL1, amount=0.3),
    "prune-l1-50": Preset(PruneL1, amount=0.5),
    "prune-l1-70": Preset(PruneL1, amount=0.7),
    "prune-channels": Preset(PruneChannels, amount=0.25),
    "prune-channels-25": Preset(PruneChannels, amount=0.25),
    "prune-channels-50": Preset(PruneChannels, amount=0.5),
    "distill": Preset(Distill),
    "tflite-fp32": Preset(TfliteFp32),
    "tflite-as-is": Preset(TfliteAsIs),
    "tflite-fp16": Preset(TfliteFp16),
    "tflite-int8": Preset(TfliteInt8),
}


__all__ = ["RECIPES", "ArtifactCache", "Preset", "Recipe", "RecipeOptions", "Variant", "build_variant"]
