"""``ov-int8``: OpenVINO post-training int8 quantization with NNCF; the output is OpenVINO IR.

``core.read_model(<onnx>)``, ``nncf.quantize`` over the same calibration feeds as
``int8-static`` (every input of the graph; the source's calibration split, or seeded
synthetic inputs when it has none, logged), then ``ov.save_model(..., compress_to_fp16=False)`` so the float
constants left (scales, biases) stay float32 as calibrated.

The artifact is two files, ``model.xml`` and ``model.bin`` beside it; ``apply`` returns
the ``.xml``. OpenVINO has no single-file IR and cannot write ONNX (``save_model`` and
``serialize`` write .xml + .bin; ``compiled_model.export_model`` is a device-specific
blob), so ``artifact_format = "openvino-ir"`` and only OpenVINO can consume it. Building
it through ``build_variant`` needs the pipeline to carry the pair (see the report of the
recipe's introduction): until then, call ``apply`` directly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from harness.errors import VariantBuildError
from harness.variants.base import Recipe, RecipeOptions
from harness.variants.int8_static import calibration_feeds

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

log = logging.getLogger(__name__)


class OvInt8Options(RecipeOptions):
    num_calibration_samples: int = Field(300, ge=1)  # NNCF's own default subset_size
    preset: Literal["performance", "mixed"] = "performance"  # symmetric / asymmetric activations
    fast_bias_correction: bool = True


class OvInt8(Recipe):
    name = "ov-int8"
    Options = OvInt8Options
    stage = "onnx"
    precision = "int8"
    runtimes = frozenset({"openvino"})
    artifact_format: ClassVar[str] = "openvino-ir"

    def tool_versions(self) -> dict[str, str]:
        import nncf
        import openvino

        return {"openvino": openvino.__version__, "nncf": nncf.__version__}

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        import nncf
        import onnx
        import openvino as ov

        from harness.variants.feeds import source_inputs

        inputs = source_inputs(onnx.load(str(inp), load_external_data=False), source)
        model = ov.Core().read_model(str(inp))
        feeds, origin = calibration_feeds(source, inputs, self.options.num_calibration_samples)
        log.info("%s: calibrating on %s", self.label, origin)
        if source.calib_path is None:
            self.note_synthetic(f"calibrated on {origin}")
        # One input: the array itself (as NNCF's examples feed it); several: {input name: batch}.
        items = [next(iter(f.values())) for f in feeds] if len(inputs) == 1 else feeds
        quantized = nncf.quantize(
            model, nncf.Dataset(items), subset_size=len(items),
            preset=nncf.QuantizationPreset(self.options.preset),
            fast_bias_correction=self.options.fast_bias_correction,
        )  # fmt: skip
        xml = workdir / "model.xml"
        ov.save_model(quantized, str(xml), compress_to_fp16=False)
        if not xml.with_suffix(".bin").is_file():
            raise VariantBuildError(f"ov.save_model wrote no {xml.with_suffix('.bin').name} beside {xml.name}")
        return xml
