"""The common step of every tflite recipe: get a float32 ``.tflite``, then finish it.

From a torch model (after any pruning or distillation steps) the float32 file comes from
``litert_torch.convert`` - straight from the module, no ONNX and no TensorFlow in between
(``onnx2tf`` >= 1.29 pins numpy 1.26 and protobuf 4). A user's own ``.tflite`` model is
taken as it is. Each recipe then finishes the file (nothing, float16 weights, full-integer
int8) with ``ai_edge_quantizer``, which works on any ``.tflite``, so the same recipes apply
to both kinds of source. An ONNX-only model cannot be converted: that is a config error
raised before any build (``build.source_problem``).

Layout: the torch module takes NCHW. ``layout: nhwc`` (the default) wraps it with
``litert_torch.to_channel_last_io`` so the file takes NHWC like a TFLite model trained in
TensorFlow and the converter's leading TRANSPOSE disappears; ``nchw`` keeps torch's layout.
The runtime reads the layout from the file's input signature either way.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from harness.errors import VariantBuildError
from harness.variants.base import Recipe, RecipeOptions
from harness.variants.tflite_file import finalize, input_shapes

if TYPE_CHECKING:
    import numpy as np

    from harness.zoo.source import SourceModel

_DISTRIBUTIONS = ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")


class TfliteOptions(RecipeOptions):
    layout: Literal["nhwc", "nchw"] = "nhwc"  # input layout of a file converted from torch


class TfliteRecipe(Recipe):
    """Base of the tflite recipes: ``finish`` turns the float32 file into the variant."""

    stage = "tflite"
    runtimes = frozenset({"litert"})
    artifact_format: ClassVar[str] = "tflite"
    Options: ClassVar[type[RecipeOptions]] = TfliteOptions
    requires = ("litert_torch", "ai_edge_quantizer")
    extra = "tflite"

    def tool_versions(self) -> dict[str, str]:
        return {d: metadata.version(d) for d in _DISTRIBUTIONS}

    def apply(self, inp: Any, workdir: Path, source: "SourceModel") -> Path:
        fp32 = Path(inp) if isinstance(inp, (str, Path)) else convert_module(
            inp, tuple(source.input_shape), getattr(self.options, "layout", "nhwc"), workdir / "fp32.tflite")
        out, notes = self.finish(fp32, workdir, source)
        if out == fp32 and isinstance(inp, (str, Path)):
            return out  # the user's own file, unchanged: its bytes (and hash) stay theirs
        finalize(out, {"recipe": self.label, **notes})
        _check_loads(out)
        return out

    def finish(self, fp32: Path, workdir: Path, source: "SourceModel") -> tuple[Path, dict[str, str]]:
        """The variant made from the float32 file, and metadata entries to tag it with."""
        return fp32, {}


def _check_loads(path: Path) -> None:
    """A file the interpreter cannot open fails the build here, rather than being cached."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        Interpreter(model_path=str(path)).allocate_tensors()
    except Exception as exc:
        raise VariantBuildError(f"the interpreter cannot load the file made: {type(exc).__name__}: {exc}") from exc


def convert_module(module: Any, input_shape: tuple[int, ...], layout: str, path: Path) -> Path:
    """torch module -> float32 ``.tflite`` at ``path`` (static shape, one input)."""
    import litert_torch
    import torch

    sample = torch.zeros(input_shape, dtype=torch.float32)
    if layout == "nhwc" and sample.ndim == 4:
        module = litert_torch.to_channel_last_io(module.eval(), args=[0])
        sample = sample.permute(0, 2, 3, 1).contiguous()
    try:
        with torch.no_grad():
            edge = litert_torch.convert(module.eval(), (sample,))
    except Exception as exc:
        raise VariantBuildError(f"litert_torch.convert failed: {type(exc).__name__}: {exc}") from exc
    edge.export(str(path))
    return path


def quantizer_for(path: Path) -> Any:
    """An ``ai_edge_quantizer.Quantizer`` over the file, quiet on stdout."""
    from ai_edge_quantizer import quantizer

    return quantizer.Quantizer(str(path))


def calibration_feed(path: Path, batches: list["np.ndarray"]) -> dict[str, list[dict[str, "np.ndarray"]]]:
    """Calibration batches as the file's signature takes them: its one input's name, and its
    layout read from its input shape (NCHW batches transposed for an NHWC file)."""
    from ai_edge_litert.interpreter import Interpreter

    from devices.agent.runtimes.litert import feed_layout

    signatures = Interpreter(model_path=str(path)).get_signature_list()
    if len(signatures) != 1:
        raise VariantBuildError(f"calibration needs a model with one signature; this one has {sorted(signatures)}")
    (key, sig), = signatures.items()
    if len(sig["inputs"]) != 1:
        raise VariantBuildError(f"calibration supports one-input models; this one has {len(sig['inputs'])}")
    (shape,) = input_shapes(path)[:1]
    nhwc = feed_layout(shape, tuple(batches[0].shape)) == "NHWC"
    name = sig["inputs"][0]
    return {key: [{name: b.transpose(0, 2, 3, 1).copy() if nhwc else b} for b in batches]}


def export(result: Any, path: Path) -> Path:
    result.export_model(str(path), overwrite=True)
    if not path.is_file():
        raise VariantBuildError(f"ai_edge_quantizer wrote no {path.name}")
    return path
