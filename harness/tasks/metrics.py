"""Task metrics from the board's predictions, computed on the coordinator.

- classification: top-1 and top-k accuracy of the board's top-k classes against ``y``.
- detection: COCO mAP@[.5:.95] and mAP@.5, by pycocotools' own ``COCOeval`` (the reference
  implementation Ultralytics and torchvision report), with the boxes mapped back to the
  original images; at most 100 detections per image count, as COCO's protocol says.
- segmentation: mIoU (the mean over classes that occur in the labels or predictions of
  TP / (TP + FP + FN)) and pixel accuracy, from the board's confusion counts.
- custom: the user's function over the raw outputs and the labels.

Every metric is a fraction in [0, 1] (the report shows %), None when undefined (no
ground truth at all).

Scoring runs in a site actor, on the thread of the board whose job it scores, beside other
boards' threads: pycocotools' prints are silenced for the scoring thread only (``_quiet``),
never by swapping ``sys.stdout`` under the other threads.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np


def classification(topk: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """top1 and top5 (the k the board used: ``topk``'s width) of ``topk`` [N, k] against ``y`` [N]."""
    n = len(topk)
    if n == 0:
        return {"top1": None, "top5": None}
    y = np.asarray(y)[:n].astype(np.int64)
    hit = topk == y[:, None]
    return {"top1": float(hit[:, 0].mean()), "top5": float(hit.any(axis=1).mean())}


def segmentation(confusion: np.ndarray) -> dict[str, float | None]:
    """mIoU and pixel accuracy of a confusion matrix (rows: label, columns: prediction)."""
    cm = np.asarray(confusion, dtype=np.float64)
    total = cm.sum()
    if total == 0:
        return {"miou": None, "pixel_acc": None}
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    present = union > 0
    return {"miou": float((tp[present] / union[present]).mean()), "pixel_acc": float(tp.sum() / total)}


def to_original(boxes: np.ndarray, image: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
    """Boxes x1, y1, x2, y2 in input pixels -> x, y, w, h in their original image's pixels
    (undoing the resize and letterbox recorded in the eval set: ``ratio``, ``pad``), clipped
    to it. Without a recorded geometry, the boxes are taken as the ground truth's pixels."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if "ratio" in data and "pad" in data:
        ry, rx = data["ratio"][image, 0], data["ratio"][image, 1]
        top, left = data["pad"][image, 0], data["pad"][image, 1]
        b = np.stack([(b[:, 0] - left) / rx, (b[:, 1] - top) / ry, (b[:, 2] - left) / rx, (b[:, 3] - top) / ry], 1)
    if "orig_hw" in data:
        h, w = data["orig_hw"][image, 0].astype(np.float64), data["orig_hw"][image, 1].astype(np.float64)
        b = np.stack([np.clip(b[:, 0], 0, w), np.clip(b[:, 1], 0, h), np.clip(b[:, 2], 0, w), np.clip(b[:, 3], 0, h)], 1)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def coco_ground_truth(data: dict[str, np.ndarray], n: int) -> Any:
    """A pycocotools ``COCO`` of the eval set's first ``n`` images and their annotations."""
    from pycocotools.coco import COCO

    ids = data["image_id"][:n].astype(np.int64)
    hw = data["orig_hw"][:n] if "orig_hw" in data else np.zeros((n, 2), np.int64)
    keep = data["gt_image"] < n
    images = [{"id": int(i), "height": int(h), "width": int(w)} for i, (h, w) in zip(ids, hw, strict=True)]
    anns = [
        {"id": k + 1, "image_id": int(ids[img]), "category_id": int(cat), "bbox": [float(v) for v in box],
         "area": float(area), "iscrowd": int(crowd)}
        for k, (img, cat, box, area, crowd) in enumerate(zip(
            data["gt_image"][keep], data["gt_category"][keep], data["gt_bbox"][keep], data["gt_area"][keep],
            data["gt_iscrowd"][keep], strict=True))
    ]  # fmt: skip
    cats = sorted({int(c) for c in data["category_ids"]} | {a["category_id"] for a in anns})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c, "name": str(c)} for c in cats]}
    with _quiet():
        gt.createIndex()
    return gt


def detection(dets: dict[str, np.ndarray], data: dict[str, np.ndarray], n: int) -> dict[str, float | None]:
    """COCO mAP@[.5:.95] and mAP@.5 of the detections on the eval set's first ``n`` images.

    ``dets``: ``boxes`` [K, 4] (x1, y1, x2, y2, input pixels), ``scores`` [K], ``classes`` [K]
    (model class indices), ``image`` [K] (index into the eval set). ``data``: the eval
    set's arrays (``data.py``). A class without a category (``category_ids``) is dropped.
    """
    from pycocotools.cocoeval import COCOeval

    gt = coco_ground_truth(data, n)
    category_ids = data["category_ids"].astype(np.int64)
    image, classes = dets["image"].astype(np.int64), dets["classes"].astype(np.int64)
    ok = (image >= 0) & (image < n) & (classes >= 0) & (classes < len(category_ids))
    image, classes = image[ok], classes[ok]
    xywh = to_original(dets["boxes"][ok], image, data)
    if not gt.getAnnIds(iscrowd=False):
        return {"map_50_95": None, "map_50": None}
    if len(image) == 0:
        return {"map_50_95": 0.0, "map_50": 0.0}
    rows = np.column_stack([data["image_id"][image].astype(np.float64), xywh,
                            dets["scores"][ok].astype(np.float64), category_ids[classes].astype(np.float64)])
    with _quiet():
        dt = gt.loadRes(rows)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = [int(i) for i in data["image_id"][:n]]
        ev.params.catIds = sorted({int(c) for c in category_ids})
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [None if s < 0 else float(s) for s in ev.stats[:2]]
    return {"map_50_95": stats[0], "map_50": stats[1]}


def custom(ref: str, outputs: list[np.ndarray], labels: np.ndarray | None) -> dict[str, float]:
    """The user's metric ``pkg.module:function(outputs, labels)``: a float, or a dict of
    floats (its first entry is the headline)."""
    from harness.zoo.registry import import_ref

    value = import_ref(ref)(outputs, labels)
    if isinstance(value, dict):
        out = {str(k): float(v) for k, v in value.items()}
        if not out:
            raise ValueError(f"custom metric {ref} returned an empty dict")
        return out
    return {"value": float(value)}


class _ThreadQuiet:
    """``sys.stdout`` while some thread is quiet: drops the writes of the quiet threads, passes
    every other thread's on to the stream it replaced."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.quiet: set[int] = set()

    def write(self, text: str) -> int:
        if threading.get_ident() in self.quiet:
            return len(text)
        return self.stream.write(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.quiet:
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence this thread's prints (pycocotools'), not those of the process's other threads:
    ``contextlib.redirect_stdout`` swaps ``sys.stdout`` for all of them, and two threads
    entering and leaving it out of order would leave one's sink in place for good."""
    me = threading.get_ident()
    with _QUIET_LOCK:
        if not isinstance(sys.stdout, _ThreadQuiet):
            sys.stdout = _ThreadQuiet(sys.stdout)
        wrapper = sys.stdout
        wrapper.quiet.add(me)
    try:
        yield
    finally:
        with _QUIET_LOCK:
            wrapper.quiet.discard(me)
            if not wrapper.quiet and sys.stdout is wrapper:
                sys.stdout = wrapper.stream
