"""Compression recipes and content-addressed variant builds.

``RECIPES`` maps a recipe name (as written in a suite's ``variants``) to its class. Adding
a recipe is one new module and one line here. Cheap to import (no torch, onnx or
runtimes): config validation reads ``RECIPES`` to check names.
"""

from harness.variants.base import Recipe
from harness.variants.build import Variant, build_variant
from harness.variants.cache import ArtifactCache
from harness.variants.fp32 import Fp32
from harness.variants.int8_dynamic import Int8Dynamic

RECIPES: dict[str, type[Recipe]] = {
    Fp32.name: Fp32,
    Int8Dynamic.name: Int8Dynamic,
}


__all__ = ["RECIPES", "ArtifactCache", "Recipe", "Variant", "build_variant"]
