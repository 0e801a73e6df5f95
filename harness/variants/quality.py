"""Host-side reference quality of a variant: the fidelity of every output against its
reference model, top-1 agreement where an output is class scores, and accuracy on the
eval set.

The board measures its own accuracy with its own runtime; this is the coordinator's
reference, and the only quality figure a model without labels has. It runs the agent's
own runtime classes, so the host infers exactly as the boards do.

**Inputs.** The variant and its reference (the chain's fp32 variant, i.e. the source model;
a .tflite model's file itself) get the same inputs: the eval set, else the model's
calibration split (its first 256 samples), else 64 seeded synthetic samples
(``fidelity_inputs`` says which). Every input of a multi-input model is fed, each with its
own shape and dtype, read from the reference's ONNX graph with the suite's shapes exactly
as calibration reads them (``harness.variants.feeds``): an npz feeds a one-input model from
``x``, a multi-input one from one array per input named after it (a file that cannot is
passed over, with its reason); synthetic data is a standard normal for floats, 0 or 1 for
integers and booleans. Each model gets the data in its own inputs' dtypes.

**Per output** (matched to the reference's by name, else by position):

- ``cosine``: cosine similarity of the variant's and the reference's output, per sample,
  averaged over the samples. Blind to scale: an output off by a constant factor scores 1.
- ``snr_db``: 10 log10(||ref||^2 / ||ref - out||^2) over every sample: how far below the
  output's energy the error is, scale included (20 dB: the error's RMS is a tenth of the
  output's; inf: identical).
- ``max_abs_err``: the largest absolute difference, in the output's own units.
- ``agreement``: top-1 agreement, only where the output is class scores: 2-D ``[N, C]``
  floats with N the batch and C > 1. The argmax over the last axis of a detection head
  (``[1, 22, 2100]``) or a segmentation map means nothing, so none is computed there.
- ``nonfinite``: values that are NaN or inf in one output and finite in the other (such an
  output scores cosine 0, SNR -inf).

The variant's columns hold the worst output's figures (lowest cosine, lowest SNR, largest
error); the per-output ones are its ``fidelity`` record. :func:`fidelity_problem` judges
them against the suite's limits (``harness.config.suite.FidelityLimits``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness.hashing import content_key
from harness.variants.base import SYNTHETIC_NOTE
from harness.variants.build import Variant

# Synthetic inputs for models without an eval set or calibration split: enough to make the
# figures meaningful, few enough that a 224px net takes about a second.
SYNTHETIC_SAMPLES = 64
# The calibration split is fed up to this many samples (the eval set is fed whole: accuracy).
CALIBRATION_SAMPLES = 256
SYNTHETIC_SEED = 0
# Bump when the figures change meaning: scores cached beside the artifacts are then recomputed.
QUALITY_SCHEMA = 2


@dataclass
class _Feeds:
    """The inputs of every run: per run, one array per input position."""

    runs: list[list[np.ndarray]]
    labels: np.ndarray | None  # one per sample of the first input (eval set only)
    source: str  # "eval" | "calibration" | "synthetic": what every input was fed
    inputs: dict[str, str]  # input name -> where its data came from
    batch: int
    notes: dict[str, str]  # a data file passed over -> why (it cannot feed every input)


def home_runtime(variant: Variant) -> str:
    """The runtime a variant is scored on by default: ONNX Runtime where it runs there."""
    runs_on = variant.runtimes or frozenset({"onnxruntime"})
    return "onnxruntime" if "onnxruntime" in runs_on else sorted(runs_on)[0]


def _runtime(variant: Variant, on: str | None = None, options: dict[str, Any] | None = None) -> Any:
    """The agent's runtime for ``variant``, loaded: its home runtime at full precision, or
    runtime ``on`` with the sweep's ``options`` for it (what the board will run)."""
    from devices.agent.runtimes import get_runtime

    name = on or home_runtime(variant)
    if on is None:
        options = {"inference_precision": "f32"} if name == "openvino" else {}
    runtime = get_runtime(name)(dict(options or {}), None)
    runtime.load(str(variant.path), str(variant.weights_path) if variant.weights_path else None)
    return runtime


def _graph_inputs(variant: Variant, reference: Variant | None, runtime: Any) -> list[Any]:
    """Every input to feed (``feeds.GraphInput``): read from the reference's ONNX graph (else the
    variant's) with the suite's shapes, as calibration reads them; for a model with no ONNX
    graph (a .tflite file), from the variant's runtime, dynamic dimensions sized 1 (the first:
    the batch)."""
    from harness.variants.feeds import GraphInput, graph_inputs

    shapes = getattr(variant, "input_shapes", None)
    for v in (reference, variant):
        if v is not None and v.format == "onnx":
            return graph_inputs(v.path, variant.input_shape, shapes)
    out = []
    for i, (name, shape, dtype) in enumerate(runtime.input_specs()):
        given = (shapes or {}).get(name) or (variant.input_shape if i == 0 else None)
        sized = tuple(given) if given else tuple(
            (int(variant.input_shape[0]) if j == 0 else 1) if d is None else d for j, d in enumerate(shape))
        out.append(GraphInput(name, dtype, sized, tuple(shape)))
    return out


def _feeds(variant: Variant, inputs: list[Any], calib_path: Path | None) -> _Feeds:
    """Every run's inputs: the eval set, else the calibration split, else seeded noise
    (``feeds.data_rows``: ``x`` for a one-input model, else one array per input named after it;
    a file that cannot feed every input is passed over, its reason kept in ``notes``)."""
    from harness.errors import VariantBuildError
    from harness.variants.feeds import batches, data_rows, synthetic_rows

    rows, labels, source, notes = None, None, "synthetic", {}
    for path, kind, limit in ((variant.eval_path, "eval", None), (calib_path, "calibration", CALIBRATION_SAMPLES)):
        if path is None:
            continue
        try:
            rows = data_rows(Path(path), inputs, limit, "eval set" if kind == "eval" else "calibration data")
        except VariantBuildError as e:
            notes[kind] = str(e)
            continue
        if kind == "eval":
            with np.load(path, allow_pickle=False) as npz:
                y = npz["y"] if "y" in npz.files else None
            # Class labels, one per sample (a task's eval set may keep other targets under y).
            if y is not None and y.ndim == 1 and y.dtype.kind in "iuf":
                labels = y.astype(np.int64)
        source = kind
        break
    if rows is None:
        rows = synthetic_rows(inputs, SYNTHETIC_SAMPLES, SYNTHETIC_SEED)
    runs = [[feed[g.name] for g in inputs] for feed in batches(rows, inputs)]
    return _Feeds(runs, labels, source, {g.name: source for g in inputs}, int(inputs[0].shape[0]), notes)


def _run(runtime: Any, arrays: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """Every output of one run, fed by position to this runtime's own inputs (and dtypes)."""
    specs = runtime.input_specs()
    return runtime.run_outputs({name: np.ascontiguousarray(x, dtype=dtype)
                                for (name, _, dtype), x in zip(specs, arrays)})


def _samples(out: np.ndarray, batch: int) -> np.ndarray:
    """One run's output as one row per sample: split on the batch axis when the output has it."""
    return out.reshape(batch, -1) if out.ndim >= 1 and out.shape[0] == batch else out.reshape(1, -1)


def is_class_scores(shape: tuple[int, ...], batch: int, dtype: np.dtype) -> bool:
    """A ``[N, C]`` float output, N the batch and C > 1: the only shape whose argmax is a class."""
    return len(shape) == 2 and shape[0] == batch and shape[1] > 1 and np.issubdtype(dtype, np.floating)


def _aligned(out: np.ndarray, ref: np.ndarray) -> np.ndarray | None:
    """``out`` in the reference's layout: as it is, or a channel-last 4-D output transposed
    (LiteRT files are NHWC); None when the two cannot be compared element by element."""
    if out.shape == ref.shape:
        return out
    if out.ndim == 4 and out.transpose(0, 3, 1, 2).shape == ref.shape:
        return out.transpose(0, 3, 1, 2)
    return None


class _OutputStats:
    """The figures of one output against the reference's, accumulated run by run (an eval set's
    outputs are never all held at once)."""

    def __init__(self, name: str, shape: tuple[int, ...], batch: int, class_scores: bool):
        self.name, self.shape, self.batch, self.class_scores = name, shape, batch, class_scores
        self.note: str | None = None
        self.cos_sum, self.samples, self.signal, self.noise, self.max_err = 0.0, 0, 0.0, 0.0, 0.0
        self.nonfinite, self.agree = 0, 0

    def add(self, out: np.ndarray, ref: np.ndarray | None) -> None:
        if self.note is not None:
            return
        if ref is None:
            self.note = "no output of the reference matches it"
            return
        aligned = _aligned(out, ref) if out.shape == self.shape else None
        if aligned is None:
            self.note = ("its shape varies between inputs" if out.shape != self.shape else
                         f"its shape differs from the reference's {list(ref.shape)}")
            return
        o, r = np.asarray(aligned, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        finite_o, finite_r = np.isfinite(o), np.isfinite(r)
        self.nonfinite += int(np.count_nonzero(finite_o != finite_r))
        both = finite_o & finite_r
        o, r = np.where(both, o, 0.0), np.where(both, r, 0.0)
        so, sr = _samples(o, self.batch), _samples(r, self.batch)
        norms = np.linalg.norm(so, axis=1) * np.linalg.norm(sr, axis=1)
        same = np.all(so == sr, axis=1)  # both zero counts as identical, not as undefined
        self.cos_sum += float(np.sum(np.where(same, 1.0, np.sum(so * sr, axis=1) / np.where(norms > 0, norms, np.inf))))
        self.samples += len(so)
        self.signal += float(np.sum(r * r))
        self.noise += float(np.sum((r - o) ** 2))
        self.max_err = max(self.max_err, float(np.max(np.abs(r - o))) if r.size else 0.0)
        if self.class_scores:
            self.agree += int(np.sum(o.argmax(axis=-1) == r.argmax(axis=-1)))

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape)}
        if self.note is not None or not self.samples:
            return {**out, "note": self.note or "no sample"}
        noise, signal = self.noise, self.signal
        snr = math.inf if noise == 0 else -math.inf if signal == 0 else 10 * math.log10(signal / noise)
        out.update(cosine=self.cos_sum / self.samples, snr_db=snr, max_abs_err=self.max_err, nonfinite=self.nonfinite)
        if self.nonfinite:
            out.update(cosine=0.0, snr_db=-math.inf, max_abs_err=math.inf)
        if self.class_scores:
            out["agreement"] = self.agree / self.samples
        return out


def _matched(outs: list[tuple[str, np.ndarray]], refs: list[tuple[str, np.ndarray]]) -> list[int | None]:
    """For each of the variant's outputs, the index of the reference's: by name when every name
    is found there, else by position (a converted file renames its outputs)."""
    names = [name for name, _ in refs]
    if all(name in names for name, _ in outs):
        return [names.index(name) for name, _ in outs]
    return [i if i < len(refs) else None for i in range(len(outs))]


def reference_quality(variant: Variant, reference: Variant | None, calib_path: Path | None = None,
                      on: str | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The variant's quality figures: ``host_accuracy`` (None without labels or class scores),
    ``agreement``, ``cosine``, ``snr_db``, ``max_abs_err`` (the worst output's; None without a
    reference), ``fidelity_inputs``, ``quality_n`` (samples fed) and ``fidelity`` (per output).
    The variant and its reference run side by side, one batch at a time; with ``on``, the
    variant runs on that runtime with the sweep's ``options`` for it (OpenVINO's own bf16, say)
    and the reference on its home runtime at full precision."""
    runtime = _runtime(variant, on, options)
    ref_runtime = None
    try:
        inputs = _graph_inputs(variant, reference, runtime)
        feeds = _feeds(variant, inputs, calib_path)
        batch = feeds.batch
        fidelity: dict[str, Any] = {
            "inputs": feeds.inputs, "reference": None if reference is None else reference.variant_id, "outputs": [],
            **({"passed_over": feeds.notes} if feeds.notes else {}),
        }  # fmt: skip
        quality: dict[str, Any] = {
            "host_accuracy": None, "agreement": None, "cosine": None, "snr_db": None, "max_abs_err": None,
            "fidelity_inputs": feeds.source, "quality_n": len(feeds.runs) * batch, "fidelity": fidelity,
        }  # fmt: skip
        compare = reference is not None
        if compare and (reference.variant_id != variant.variant_id or on is not None):
            ref_runtime = _runtime(reference)
            n_ref = len(ref_runtime.input_specs())
            if n_ref != len(inputs):
                fidelity["error"] = f"the variant has {len(inputs)} input(s), its reference {n_ref}"
                compare = False
        stats: list[_OutputStats] = []
        matched: list[int | None] = []
        scores: int | None = None
        hits = labelled = 0
        for r, arrays in enumerate(feeds.runs):
            outs = _run(runtime, arrays)
            if r == 0:
                scores = next((i for i, (_, a) in enumerate(outs) if is_class_scores(a.shape, batch, a.dtype)), None)
            if feeds.labels is not None and scores is not None:
                top1 = outs[scores][1].argmax(axis=-1)
                truth = feeds.labels[r * batch: r * batch + len(top1)]
                hits, labelled = hits + int(np.sum(top1[: len(truth)] == truth)), labelled + len(truth)
            if not compare:
                continue
            refs = outs if ref_runtime is None else _run(ref_runtime, arrays)
            if r == 0:
                matched = _matched(outs, refs)
                stats = [_OutputStats(name, a.shape, batch, is_class_scores(a.shape, batch, a.dtype))
                         for name, a in outs]
            for s, (_, out), j in zip(stats, outs, matched):
                s.add(out, None if j is None else refs[j][1])
    finally:
        runtime.close()
        if ref_runtime is not None:
            ref_runtime.close()
    if labelled:
        quality["host_accuracy"] = hits / labelled
    fidelity["outputs"] = [s.entry() for s in stats]
    figures = [f for f in fidelity["outputs"] if "cosine" in f]
    if figures:
        quality["cosine"] = min(f["cosine"] for f in figures)
        quality["snr_db"] = min(f["snr_db"] for f in figures)
        quality["max_abs_err"] = max(f["max_abs_err"] for f in figures)
        agreements = [f["agreement"] for f in figures if "agreement" in f]
        quality["agreement"] = min(agreements) if agreements else None
    return quality


def cached_quality(variant: Variant, reference: Variant | None, calib_path: Path | None = None,
                   on: str | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """``reference_quality``, kept beside the variant's cached artifact, so a sweep that
    finds the variant built does not score it again."""
    data = variant.eval_path or calib_path
    key = content_key({
        **({"on": on, "options": options or {}} if on is not None else {}),
        "schema": QUALITY_SCHEMA, "reference": reference.variant_id if reference else None,
        "synthetic_samples": SYNTHETIC_SAMPLES, "calibration_samples": CALIBRATION_SAMPLES,
        "data": None if data is None else ["eval" if variant.eval_path else "calibration", *_stamp(Path(data))],
        "runtimes": {name: _version(name) for name in ("onnxruntime", "openvino", "ai-edge-litert")},
    })  # fmt: skip
    path = variant.path.parent / f"quality-{key[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    quality = reference_quality(variant, reference, calib_path, on, options)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(quality))
    os.replace(tmp, path)
    return quality


def _stamp(path: Path) -> tuple[str, int, int]:
    """What identifies a data file's content cheaply (an eval set may be large): path, size, mtime."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _figure(value: float) -> str:
    return f"{value:.4g}"


def fidelity_problem(quality: dict[str, Any], min_cosine: float | None = None, min_snr_db: float | None = None,
                     max_abs_err: float | None = None) -> str | None:
    """Why a variant is degraded under these limits (None: within them, or nothing to judge):
    each output past a limit, e.g. ``cosine 0.013 < 0.99 on output 'sigmoid_0.tmp_0'``."""
    fidelity = quality.get("fidelity") or {}
    if fidelity.get("error"):
        return f"not comparable with its reference: {fidelity['error']}"
    problems = []
    for o in fidelity.get("outputs") or ():
        parts = []
        if o.get("nonfinite"):
            parts.append(f"{o['nonfinite']} value(s) NaN or inf in one of the two outputs only")
        cosine, snr, err = o.get("cosine"), o.get("snr_db"), o.get("max_abs_err")
        if min_cosine is not None and cosine is not None and cosine < min_cosine:
            parts.append(f"cosine {_figure(cosine)} < {min_cosine:g}")
        if min_snr_db is not None and snr is not None and snr < min_snr_db:
            parts.append(f"SNR {snr:.1f} dB < {min_snr_db:g} dB")
        if max_abs_err is not None and err is not None and err > max_abs_err:
            parts.append(f"max abs error {_figure(err)} > {max_abs_err:g}")
        if parts:
            problems.append(f"{', '.join(parts)} on output {o.get('name')!r}")
    if not problems:
        return None
    more = f"; and {len(problems) - 3} more output(s)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def variant_record(variant: Variant, quality: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps about a variant (see ``harness.records.VARIANT_COLUMNS``)."""
    return {
        "variant_id": variant.variant_id, "model": variant.model, "chain": variant.chain, "sha256": variant.sha256,
        "size_bytes": variant.size_bytes, "params": variant.params, "macs": variant.macs,
        "sparsity": getattr(variant, "sparsity", None), "precision": variant.precision, "opset": variant.opset,
        "build_s": variant.build_s, "tool_versions": dict(variant.tool_versions), "notes": dict(variant.notes),
        "synthetic": variant.notes.get(SYNTHETIC_NOTE),
        **{k: quality.get(k) for k in ("host_accuracy", "agreement", "cosine", "snr_db", "max_abs_err",
                                       "fidelity_inputs", "fidelity")},
    }  # fmt: skip
