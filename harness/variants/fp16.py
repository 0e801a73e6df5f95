"""``fp16``: every float32 tensor and op of the graph in float16; inputs and outputs stay float32.

``onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)`` inserts a
Cast after the input and before the output, so callers feed and read float32 exactly as
for the fp32 variant. Weights below float16's range are raised to 1e-7 and those above it
clamped to 1e4 (the converter's defaults); the count is logged, not warned per value.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from harness.variants.base import Recipe

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

log = logging.getLogger(__name__)


class Fp16(Recipe):
    name = "fp16"
    stage = "onnx"
    precision = "fp16"
    # Checked with onnxruntime 1.32 and OpenVINO 2026.4 on CPU (digits-cnn, mobilenetv2-224):
    # ORT's CPU provider runs the float16 graph, and OpenVINO compiles it under its default
    # bf16 precision and under INFERENCE_PRECISION_HINT=f32 (digits accuracy equal to fp32
    # in all three), so any runtime may consume it.
    runtimes = None

    def tool_versions(self) -> dict[str, str]:
        import onnxconverter_common

        return {"onnxconverter-common": onnxconverter_common.__version__}

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        import onnx
        from onnxconverter_common.float16 import convert_float_to_float16

        model = onnx.load(str(inp))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            converted = convert_float_to_float16(model, keep_io_types=True)
        clipped = [w for w in caught if "truncated" in str(w.message)]
        if clipped:
            log.info("fp16: %d float32 values outside float16's range were clamped (to 1e-7 or 1e4 in magnitude)",
                     len(clipped))
        for w in caught:
            if w not in clipped:
                log.warning("fp16: %s", w.message)
        out = workdir / "fp16.onnx"
        onnx.save(converted, str(out))
        return out
