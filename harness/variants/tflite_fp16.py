"""``tflite-fp16``: float16 weights, float32 compute (TFLite's "float16 quantization").

``ai_edge_quantizer``'s FLOAT_CASTING algorithm stores every supported op's weights as
float16 behind a DEQUANTIZE; the interpreter widens them to float32 once at load (XNNPACK
may run them in fp16 where the CPU has native fp16 arithmetic, e.g. the Pi 5's Cortex-A76),
so the file is about half the size while inputs, outputs and activations stay float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.variants.tflite_convert import TfliteRecipe, export, quantizer_for

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel


class TfliteFp16(TfliteRecipe):
    name = "tflite-fp16"
    precision = "fp16"

    def finish(self, fp32: Path, workdir: Path, source: "SourceModel") -> tuple[Path, dict[str, str]]:
        from ai_edge_quantizer import qtyping
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        q = quantizer_for(fp32)
        q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                 algorithm_key=AlgorithmName.FLOAT_CASTING)
        return export(q.quantize(), workdir / "fp16.tflite"), {"weights": "float16 (FLOAT_CASTING)"}
