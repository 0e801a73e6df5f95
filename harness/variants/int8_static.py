"""``int8-static``: ONNX Runtime static quantization to a QDQ graph (int8 weights, calibrated activations).

Steps: ``quant_pre_process`` (skipped with a warning if it fails), calibration of every
activation's range over the source's calibration split, then ``quantize_static`` in QDQ
format with per-channel int8 weights. The graph must be at opset 13 or later (per-channel
QDQ puts an ``axis`` on DequantizeLinear): the builder converts an older one first
(``Recipe.min_opset``). Every input of the graph is fed (``feeds``): calibration data is
``source.calib_path``'s ``x`` for a one-input model, or one array per input named after it
(the first ``num_calibration_samples`` rows, in batches of each input's batch size), in the
model's own layout (NCHW rows are transposed for an NHWC input). A source without
calibration data is calibrated on seeded synthetic inputs of each input's shape and dtype
instead, with a warning in the log and the fact recorded in the model's
``metadata_props``: the ranges then reflect synthetic data, not the model's real inputs,
and accuracy may suffer accordingly.

The calibration is driven here rather than inside ``quantize_static`` for two reasons:

- memory: ORT's histogram calibrators hold every activation of every sample until the
  end (about 50 MB a sample for MobileNetV2-224); here samples go through in chunks of
  ``CHUNK_SAMPLES`` and the histograms are merged;
- ``entropy``: ``quantize_static`` cannot set the histogram size, and with ORT's default
  (128 bins = 128 quantized bins) the KL search has exactly one candidate, the full
  range, so "entropy" silently equals "minmax" (measured: byte-identical models). Here
  both histogram methods use ``HISTOGRAM_BINS``.

The ranges are handed to ``quantize_static`` through its ``calibration_cache_path``
(onnxruntime >= the release with microsoft/onnxruntime#28221; 1.32 has it).

Activations default to QUInt8. QDQ graphs with QInt8 activations were once seen to fail to
compile on OpenVINO CPU under bf16 ("No suitable implementations"); on this host (OpenVINO
2026.4.1, AVX512-BF16 CPU) both types compiled and ran for digits-cnn, MobileNetV2 and
ResNet-18, under bf16 and f32. QUInt8 stays the default as the combination known to work everywhere it was tried.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from harness.errors import VariantBuildError, name_list
from harness.variants.base import Recipe, RecipeOptions

if TYPE_CHECKING:
    import numpy as np

    from harness.variants.feeds import GraphInput
    from harness.zoo.source import SourceModel

log = logging.getLogger(__name__)

# Histogram size for entropy and percentile: ORT's percentile default and TensorRT's entropy
# setting. ORT's KL search then tries ~960 thresholds, ~0.6 s per calibrated tensor whatever
# the sample count (digits-cnn 10 s, MobileNetV2 ~55 s); 1024 bins halves that but cost
# digits-cnn 0.8 points of accuracy (2048: none).
HISTOGRAM_BINS = 2048
CHUNK_SAMPLES = 16  # samples whose activations are held in memory at once during calibration
SYNTHETIC_SEED = 0
# Seeded random inputs: more of them only cost time (MobileNetV2, minmax: output cosine to
# fp32 0.977 with 8 samples, 0.975 with 256; percentile takes ~0.3 s a sample).
SYNTHETIC_MAX_SAMPLES = 32
METADATA_CALIBRATION = "edge_harness.calibration"
METADATA_KEPT_FLOAT = "edge_harness.kept_float"  # JSON list of the nodes left unquantized

_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
_QTYPES = {"quint8": "QUInt8", "qint8": "QInt8"}


class Int8StaticOptions(RecipeOptions):
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    num_calibration_samples: int = Field(256, ge=1)
    per_channel: bool = True
    activation_type: Literal["quint8", "qint8"] = "quint8"
    weight_type: Literal["qint8"] = "qint8"
    percentile: float = Field(99.999, gt=0, le=100)
    nodes_to_exclude: tuple[str, ...] = ()

    @field_validator("percentile")
    @classmethod
    def _percentile_needs_percentile_calibration(cls, value: float, info: ValidationInfo) -> float:
        # Runs only when percentile is given: a value the build would ignore is a config mistake.
        if info.data.get("calibration") != "percentile":
            raise ValueError("applies only with calibration: percentile")
        return value


class Int8Static(Recipe):
    name = "int8-static"
    Options = Int8StaticOptions
    stage = "onnx"
    precision = "int8"
    # Checked with OpenVINO 2026.4 on CPU: the QDQ graph (QUInt8 and QInt8 activations,
    # digits-cnn and mobilenetv2-224) compiles and runs under the default bf16 and under
    # INFERENCE_PRECISION_HINT=f32, so any runtime may consume it.
    runtimes = None
    min_opset = 13  # DequantizeLinear's per-channel ``axis``; ORT's QDQ fusions want 13 too

    def tool_versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def float_nodes(self, model: Any) -> tuple[str, ...]:
        """Nodes of ``model`` (the graph about to be quantized) to keep in float."""
        return check_node_names(model, self.options.nodes_to_exclude, "nodes_to_exclude")

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        import onnx

        from harness.variants.feeds import source_inputs

        pre = preprocess(Path(inp), workdir, self.label)
        model = onnx.load(str(pre), load_external_data=False)
        keep = self.float_nodes(model)
        feeds, origin = calibration_feeds(source, source_inputs(model, source), self.options.num_calibration_samples)
        if source.calib_path is None:
            self.note_synthetic(f"calibrated on {origin}")
        out = workdir / f"{self.name}.onnx"
        quantize_qdq(pre, out, feeds, self.options, keep, workdir)
        metadata = {METADATA_CALIBRATION: f"{self.options.calibration} on {origin}"}
        if keep:
            metadata[METADATA_KEPT_FLOAT] = json.dumps(list(keep))
        set_metadata(out, metadata)
        return out


def preprocess(src: Path, workdir: Path, label: str) -> Path:
    """``quant_pre_process`` (shape inference, graph optimisation); the input itself if it fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = workdir / "preprocessed.onnx"
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        return pre
    except Exception as exc:  # pre-processing is an optimisation only; quantize the original
        log.warning("%s: quant_pre_process failed (%s); quantizing the graph as is", label, exc)
        return src


def check_node_names(model: Any, names: Sequence[str], what: str) -> tuple[str, ...]:
    """``names`` as given, or ``VariantBuildError`` naming those not in ``model``'s graph."""
    present = {n.name for n in model.graph.node}
    unknown = [n for n in names if n not in present]
    if unknown:
        examples = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")][:4]
        examples = examples or [n.name for n in model.graph.node][:4]
        listed = ", ".join(map(repr, unknown)) if len(unknown) <= 8 else name_list([repr(n) for n in unknown], "names")
        raise VariantBuildError(
            f"{what}: no node named {listed} in the graph being quantized "
            f"(after quant_pre_process); node names look like {', '.join(map(repr, examples))}"
        )
    return tuple(dict.fromkeys(names))


def calibration_feeds(source: "SourceModel", inputs: Sequence["GraphInput"],
                      num_samples: int) -> tuple[list[dict[str, "np.ndarray"]], str]:
    """Calibration feeds for every one of ``inputs`` (``{name: batch}``), and where they came from.

    Real data: the first ``num_samples`` rows of ``source.calib_path`` (``feeds.data_rows``:
    ``x``, or one array per input). Without it, seeded synthetic rows per input in its own
    dtype and shape (logged as a warning), at most ``SYNTHETIC_MAX_SAMPLES`` of them; for a
    one-input float model they are exactly ``calibration_batches``'s.
    """
    from harness.variants.feeds import batches, data_rows, describe, synthetic_rows

    if source.calib_path is not None:
        rows = data_rows(Path(source.calib_path), inputs, num_samples, "calibration data")
        origin = f"{len(next(iter(rows.values())))} samples of {Path(source.calib_path).name}"
    else:
        n = min(num_samples, SYNTHETIC_MAX_SAMPLES)
        rows = synthetic_rows(inputs, n, SYNTHETIC_SEED)
        origin = f"{n} synthetic standard-normal samples (seed {SYNTHETIC_SEED}; no calibration data)"
        log.warning("%s has no calibration data: calibrating on %d seeded synthetic inputs (%s); the activation "
                    "ranges reflect synthetic data, not real inputs", source.name, n, describe(inputs))
    return batches(rows, inputs), origin


def calibration_batches(source: "SourceModel", num_samples: int) -> tuple[list["np.ndarray"], str]:
    """Calibration inputs in batches of ``source.input_shape``, and where they came from
    (one input, as ``source.input_shape`` says: the tflite recipes' calibration).

    Real data: the first ``num_samples`` rows of ``source.calib_path``'s ``x``. Without it,
    seeded standard-normal inputs (logged as a warning), at most ``SYNTHETIC_MAX_SAMPLES``
    of them. A tail shorter
    than one batch is dropped; fewer samples than one batch are tiled to fill it.
    """
    import numpy as np

    shape = tuple(source.input_shape)
    batch = shape[0]
    if source.calib_path is not None:
        try:
            with np.load(source.calib_path, allow_pickle=False) as data:
                x = np.ascontiguousarray(data["x"][:num_samples], dtype=np.float32)
        except Exception as exc:
            raise VariantBuildError(
                f"cannot read calibration data {source.calib_path}: {type(exc).__name__}: {exc}") from exc
        if x.shape[1:] != shape[1:] or len(x) == 0:
            raise VariantBuildError(f"calibration data {source.calib_path} has shape {x.shape}; "
                                    f"the model takes {shape}")
        origin = f"{len(x)} samples of {Path(source.calib_path).name}"
    else:
        n = min(num_samples, SYNTHETIC_MAX_SAMPLES)
        x = np.random.default_rng(SYNTHETIC_SEED).standard_normal((n, *shape[1:]), dtype=np.float32)
        origin = f"{n} synthetic standard-normal samples (seed {SYNTHETIC_SEED}; no calibration data)"
        log.warning("%s has no calibration data: calibrating on %d seeded standard-normal inputs of shape %s; "
                    "the activation ranges reflect synthetic data, not real inputs", source.name, n, shape)
    if len(x) < batch:
        x = np.resize(x, (batch, *x.shape[1:]))
    return [x[i : i + batch] for i in range(0, len(x) - batch + 1, batch)], origin


class _Reader:
    """A ``CalibrationDataReader`` over a list of feeds (``{input_name: batch}``)."""

    def __init__(self, feeds: Sequence[dict[str, "np.ndarray"]]):
        self._it = iter(list(feeds))

    def get_next(self) -> dict[str, "np.ndarray"] | None:
        return next(self._it, None)


def calibrate(model_path: Path, feeds: Sequence[dict[str, "np.ndarray"]], options: Int8StaticOptions,
              workdir: Path) -> Any:
    """Activation ranges (ORT ``TensorsData``) of ``model_path`` over ``feeds``, in chunks."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    method = CalibrationMethod[_METHODS[options.calibration]]
    extra: dict[str, Any] = {}
    if options.calibration != "minmax":
        extra["num_bins"] = HISTOGRAM_BINS
    if options.calibration == "percentile":
        extra["percentile"] = options.percentile
    per_chunk = max(1, CHUNK_SAMPLES // len(next(iter(feeds[0].values()))))
    with contextlib.redirect_stdout(io.StringIO()):  # ORT prints progress lines for histograms
        calibrator = create_calibrator(model_path, None, augmented_model_path=str(workdir / "augmented.onnx"),
                                       calibrate_method=method, extra_options=extra)
        for i in range(0, len(feeds), per_chunk):
            calibrator.collect_data(_Reader(feeds[i : i + per_chunk]))
        return calibrator.compute_data()


def quantize_qdq(pre: Path, out: Path, feeds: Sequence[dict[str, "np.ndarray"]], options: Int8StaticOptions,
                 keep_float: Sequence[str], workdir: Path) -> None:
    """Calibrate ``pre`` and write its QDQ int8 quantization to ``out``."""
    import inspect

    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise VariantBuildError(f"needs onnxruntime with quantize_static(calibration_cache_path=...) "
                                f"(1.32 has it); this is {onnxruntime.__version__}")
    ranges_path = workdir / "calibration.json"
    save_tensors_data(calibrate(pre, feeds, options, workdir), ranges_path)
    quantize_static(
        pre, out, None,
        quant_format=QuantFormat.QDQ,
        per_channel=options.per_channel,
        activation_type=QuantType[_QTYPES[options.activation_type]],
        weight_type=QuantType[_QTYPES[options.weight_type]],
        nodes_to_exclude=list(keep_float),
        calibrate_method=CalibrationMethod[_METHODS[options.calibration]],
        calibration_cache_path=ranges_path,
    )  # fmt: skip


def set_metadata(path: Path, entries: dict[str, str]) -> None:
    """Add or replace ``metadata_props`` entries of the ONNX file at ``path``."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(entries)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
