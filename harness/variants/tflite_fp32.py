"""``tflite-fp32``: the torch model converted to a float32 ``.tflite`` (litert-torch), or a
user's own ``.tflite`` model measured as it is: the LiteRT baseline."""

from __future__ import annotations

from harness.variants.tflite_convert import TfliteRecipe


class TfliteFp32(TfliteRecipe):
    name = "tflite-fp32"
    precision = "fp32"
