"""The eval set through the timed runtime instance, decoded on the board, timed in parts.

Per batch (the model's batch size; a tail that does not fill one is dropped, as for
accuracy): *pre* is taking the batch out of the eval set in the input's dtype, *infer* is
``Runtime.run_all``, *post* is the decoding (top-k, detection head + NMS, confusion
counts). Each is divided by the batch size, and the result carries their medians per
image (``pre_ms``, ``infer_ms``, ``post_ms``), apart from the timed window: the timed
window stays the bare inference loop.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import ArtifactIncompatible, MeasurementError, guard
from ..taskspec import TaskSettings
from . import classification, segmentation
from .detect import Detections
from .pack import pack
from .registry import DECODERS

RunAll = Callable[[np.ndarray], List[np.ndarray]]


def input_hw(input_shape: Tuple[int, ...], layout: str) -> Tuple[int, int]:
    """The input's (height, width) from its shape and layout (a 4-D image batch)."""
    if len(input_shape) != 4:
        return (1, 1)
    return (int(input_shape[2]), int(input_shape[3])) if layout == "nchw" else (int(input_shape[1]),
                                                                                int(input_shape[2]))


def load_task_set(path: str, s: TaskSettings, max_samples: Optional[int]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``x`` as stored (cast per batch, inside *pre*) and the labels the board reads: class
    indices (classification) or masks (segmentation); None for the other kinds."""
    with np.load(path, allow_pickle=False) as data:
        x = data["x"]
        y = data["y"] if s.kind in ("classification", "segmentation") else None
    if max_samples is not None:
        x = x[:max_samples]
        y = None if y is None else y[:max_samples]
    return x, y


def run_task(run_all: RunAll, x: np.ndarray, y: Optional[np.ndarray], batch: int, dtype: str, s: TaskSettings,
             input_shape: Tuple[int, ...], check_deadline: Callable[[], None] = lambda: None,
             ) -> Tuple[Optional[float], int, Dict[str, Any]]:
    """(top-1 accuracy for classification else None, samples evaluated, the result's ``task``)."""
    n_batches = len(x) // batch
    hw = input_hw(input_shape, s.layout)
    clock = time.perf_counter_ns
    pre, infer, post = [], [], []  # type: List[int], List[int], List[int]
    topk = []  # type: List[np.ndarray]
    dets = []  # type: List[Detections]
    raw = []  # type: List[List[np.ndarray]]
    conf = np.zeros((0, 0), dtype=np.int64)
    decode = DECODERS.get(s.decode or "")
    for i in range(n_batches):
        check_deadline()
        sl = slice(i * batch, (i + 1) * batch)
        t0 = clock()
        xb = np.ascontiguousarray(x[sl], dtype=dtype)
        t1 = clock()
        try:
            outs = run_all(xb)
        except Exception as exc:
            raise MeasurementError("inference failed in phase accuracy: %s" % exc) from None
        t2 = clock()
        if s.raw:
            raw.append([np.asarray(o) for o in outs])
            if i == 0:
                _check_raw_size(raw[0], n_batches, s.max_raw_mb)
        elif s.kind == "classification":
            topk.append(guard(lambda: classification.top_k(outs, s.top_k, batch), MeasurementError, "top-k failed"))
        elif s.kind == "segmentation":
            assert y is not None
            masks = y[sl]
            counts = guard(lambda: segmentation.confusion(outs, masks, s.ignore_index, s.layout, conf.shape[0]),
                           MeasurementError, "segmentation post-processing failed")
            conf = segmentation.add(conf, counts)
        elif decode is not None:
            b, sc, c, img = guard(lambda: decode(outs, s, hw), MeasurementError, "%s decoding failed" % s.decode)
            dets.append((b, sc, c, img + i * batch))
        t3 = clock()
        pre.append(t1 - t0)
        infer.append(t2 - t1)
        post.append(t3 - t2)
    n = n_batches * batch
    arrays, accuracy = _arrays(s, topk, dets, raw, conf, y, n, batch)
    task = {
        "kind": s.kind, "decode": s.decode, "raw": s.raw, "n": n, "batch": batch,
        "pre_ms": _per_image_ms(pre, batch), "infer_ms": _per_image_ms(infer, batch),
        "post_ms": _per_image_ms(post, batch), "arrays": pack(arrays),
    }  # type: Dict[str, Any]
    return accuracy, n, task


def _arrays(s: TaskSettings, topk: List[np.ndarray], dets: List[Detections], raw: List[List[np.ndarray]],
            conf: np.ndarray, y: Optional[np.ndarray], n: int, batch: int,
            ) -> Tuple[Dict[str, np.ndarray], Optional[float]]:
    """The predictions sent back, and top-1 accuracy for a classification task. Raw outputs
    are joined along their batch axis (stacked, one per batch, when they have none)."""
    if s.raw:
        if not raw:
            return {}, None
        out = {}
        for k in range(len(raw[0])):
            parts = [b[k] for b in raw]
            batched = all(p.ndim and p.shape[0] == batch for p in parts)
            out["out_%d" % k] = np.concatenate(parts) if batched else np.stack(parts)
        return out, None
    if s.kind == "classification":
        top = np.concatenate(topk) if topk else np.zeros((0, s.top_k), dtype=np.int64)
        accuracy = None
        if n and y is not None:
            accuracy = float(np.count_nonzero(top[:, 0] == np.asarray(y[:n]).astype(np.int64))) / n
        return {"topk": top}, accuracy
    if s.kind == "segmentation":
        return {"confusion": conf}, None
    if not dets:
        return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
                "classes": np.zeros(0, np.int64), "image": np.zeros(0, np.int64)}, None
    return {"boxes": np.concatenate([d[0] for d in dets]), "scores": np.concatenate([d[1] for d in dets]),
            "classes": np.concatenate([d[2] for d in dets]), "image": np.concatenate([d[3] for d in dets])}, None


def _check_raw_size(first: List[np.ndarray], n_batches: int, max_raw_mb: float) -> None:
    """Refuse before running the whole set when its raw outputs would pass ``max_raw_mb``."""
    total = sum(o.nbytes for o in first) * n_batches
    if total > max_raw_mb * (1 << 20):
        raise ArtifactIncompatible(
            "the raw outputs of the eval set would be %.1f MB, over the task's max_raw_mb %g: use fewer images "
            "(eval max_images) or a board decoder (decode: yolov8, yolov5, ssd)" % (total / float(1 << 20), max_raw_mb))


def _per_image_ms(batch_ns: List[int], batch: int) -> Optional[float]:
    return float(np.median(batch_ns)) / batch / 1e6 if batch_ns else None
