"""Compression recipes and content-addressed variant builds.

``RECIPES`` maps a recipe name (as written in a suite's ``variants``) to a ``Preset``: its
class and the options the name stands for. Adding a recipe is one new module and a line
here. Cheap to import (no torch, onnx or
runtimes): config validation reads ``RECIPES`` to check names.
"""

from harness.variants.base import Preset, Recipe, RecipeOptions
from harness.variants.build import Variant, build_variant
from harness.variants.cache import ArtifactCache
from harness.variants.fp32 import Fp32
from harness.variants.int8_dynamic import Int8Dynamic

RECIPES: dict[str, Preset] = {
    "fp32": Preset(Fp32),
    "int8-dynamic": Preset(Int8Dynamic),
}


__all__ = ["RECIPES", "ArtifactCache", "Preset", "Recipe", "RecipeOptions", "Variant", "build_variant"]
