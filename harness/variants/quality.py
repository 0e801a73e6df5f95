"""Host-side reference quality of a variant: accuracy on the eval set, and, for every
model (labelled or not), top-1 agreement and output cosine similarity against fp32.

The board measures its own accuracy with its own runtime; this is the coordinator's
reference, and the only accuracy figure a model without labels has. It runs the agent's
own runtime classes, so the host infers exactly as the boards do.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from typing import Any

import numpy as np

from harness.hashing import content_key
from harness.variants.build import Variant

# Synthetic inputs for models without an eval set: enough to make agreement meaningful,
# few enough that a 224px net takes about a second.
SYNTHETIC_SAMPLES = 64


def _inputs(variant: Variant) -> tuple[np.ndarray, np.ndarray | None]:
    if variant.eval_path is not None:
        with np.load(variant.eval_path, allow_pickle=False) as data:
            return np.ascontiguousarray(data["x"], dtype=np.float32), data["y"].astype(np.int64)
    rng = np.random.default_rng(0)
    return rng.standard_normal((SYNTHETIC_SAMPLES, *variant.input_shape[1:]), dtype=np.float32), None


def _outputs(variant: Variant, x: np.ndarray) -> np.ndarray:
    """First output for every full batch of ``x``, flattened per sample."""
    from devices.agent.runtimes import get_runtime

    runs_on = variant.runtimes or frozenset({"onnxruntime"})
    name = "onnxruntime" if "onnxruntime" in runs_on else sorted(runs_on)[0]
    options = {"inference_precision": "f32"} if name == "openvino" else {}
    runtime = get_runtime(name)(options, None)
    runtime.load(str(variant.path), str(variant.weights_path) if variant.weights_path else None)
    batch = variant.input_shape[0]
    try:
        outs = [runtime.run(x[i : i + batch]) for i in range(0, len(x) - batch + 1, batch)]
    finally:
        runtime.close()
    return np.concatenate([np.asarray(o, dtype=np.float64).reshape(batch, -1) for o in outs])


def reference_quality(variant: Variant, reference: Variant | None) -> dict[str, Any]:
    """``host_accuracy`` (None without labels), ``agreement`` and ``cosine`` against ``reference``."""
    x, y = _inputs(variant)
    out = _outputs(variant, x)
    quality: dict[str, Any] = {"host_accuracy": None, "agreement": None, "cosine": None, "quality_n": len(out)}
    if y is not None:
        quality["host_accuracy"] = float(np.mean(out.argmax(axis=1) == y[: len(out)]))
    if reference is not None:
        ref = out if reference.variant_id == variant.variant_id else _outputs(reference, x)
        quality["agreement"] = float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1)))
        norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
        quality["cosine"] = float(np.mean(np.sum(out * ref, axis=1) / np.maximum(norms, 1e-30)))
    return quality


def cached_quality(variant: Variant, reference: Variant | None) -> dict[str, Any]:
    """``reference_quality``, kept beside the variant's cached artifact, so a sweep that
    finds the variant built does not score it again."""
    key = content_key({
        "reference": reference.variant_id if reference else None, "synthetic_samples": SYNTHETIC_SAMPLES,
        "runtimes": {name: _version(name) for name in ("onnxruntime", "openvino", "ai-edge-litert")},
    })  # fmt: skip
    path = variant.path.parent / f"quality-{key[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    quality = reference_quality(variant, reference)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(quality))
    os.replace(tmp, path)
    return quality


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def variant_record(variant: Variant, quality: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps about a variant (see ``harness.records.VARIANT_COLUMNS``)."""
    return {
        "variant_id": variant.variant_id, "model": variant.model, "chain": variant.chain, "sha256": variant.sha256,
        "size_bytes": variant.size_bytes, "params": variant.params, "macs": variant.macs,
        "sparsity": getattr(variant, "sparsity", None), "precision": variant.precision, "opset": variant.opset,
        "build_s": variant.build_s, "tool_versions": dict(variant.tool_versions),
        **{k: quality.get(k) for k in ("host_accuracy", "agreement", "cosine")},
    }  # fmt: skip
