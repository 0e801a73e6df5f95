"""``int8-dynamic``: ONNX Runtime dynamic quantization (int8 weights, activations per run).

Needs no calibration data, so it works for any model; ``quant_pre_process`` (shape
inference and graph optimisation) runs first so Conv/MatMul are found, and is skipped
if it fails on a graph it does not understand. A graph older than opset 11 (13 with
``per_channel``) is converted first by the builder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import VariantBuildError
from harness.variants.base import Recipe, RecipeOptions

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

class Int8DynamicOptions(RecipeOptions):
    per_channel: bool = False
    reduce_range: bool = False


class Int8Dynamic(Recipe):
    name = "int8-dynamic"
    Options = Int8DynamicOptions
    stage = "onnx"
    precision = "int8"
    # Checked with OpenVINO 2026.4 on CPU (digits-cnn, mobilenetv2-224): the ConvInteger /
    # DynamicQuantizeLinear graph compiles and runs under the default bf16 precision and
    # under INFERENCE_PRECISION_HINT=f32, so any runtime may consume it.
    runtimes = None
    min_opset = 11  # DynamicQuantizeLinear

    def opset_needed(self) -> int | None:
        return 13 if self.options.per_channel else self.min_opset  # per-channel: DequantizeLinear's axis

    def tool_versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from harness.variants.int8_static import preprocess

        src = preprocess(Path(inp), workdir, self.label)
        out = workdir / "int8_dynamic.onnx"
        o = self.options
        try:
            quantize_dynamic(src, out, weight_type=QuantType.QInt8, per_channel=o.per_channel, reduce_range=o.reduce_range)
        except Exception as exc:
            raise VariantBuildError(f"quantize_dynamic failed: {type(exc).__name__}: {exc}") from exc
        return out
