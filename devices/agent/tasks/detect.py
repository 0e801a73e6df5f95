"""What every detection decoder does after reading its head: score threshold, NMS, clip.

A decoder hands over, per image, candidate boxes (x1, y1, x2, y2, in the model's units)
and a score per class; ``finish`` scales normalized boxes to input pixels, keeps
candidates above ``conf`` (the best class of each box, or with ``multi_label`` every class
above it, as Ultralytics' validator does), at most ``MAX_NMS`` of them by score, then
class-wise NMS to ``max_det`` and clipping to the input. The coordinator maps the boxes
back to the original image (undoing the letterbox) and scores them.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..taskspec import TaskSettings
from .nms import batched_nms

# Candidates NMS looks at, per image (Ultralytics' max_nms).
MAX_NMS = 30000

# A batch's detections: boxes [K, 4] float32, scores [K] float32, classes [K] int64, and
# the index of each detection's image within the batch [K] int64.
Detections = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def empty() -> Detections:
    return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))


def finish(boxes: np.ndarray, class_scores: np.ndarray, s: TaskSettings, input_hw: Tuple[int, int],
           normalized: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's detections (boxes in input pixels, scores, classes) from its candidates."""
    h, w = input_hw
    boxes = np.asarray(boxes, dtype=np.float32)
    class_scores = np.asarray(class_scores, dtype=np.float32)
    if normalized:
        boxes = boxes * np.array([w, h, w, h], dtype=np.float32)
    if s.multi_label:
        idx, cls = np.nonzero(class_scores > s.conf)
        scores = class_scores[idx, cls]
        boxes = boxes[idx]
    else:
        cls = np.argmax(class_scores, axis=1) if class_scores.shape[1] else np.zeros(0, np.int64)
        scores = class_scores[np.arange(class_scores.shape[0]), cls] if class_scores.shape[1] else np.zeros(0)
        mask = scores > s.conf
        boxes, scores, cls = boxes[mask], scores[mask], cls[mask]
    if scores.shape[0] > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        boxes, scores, cls = boxes[top], scores[top], cls[top]
    keep = batched_nms(boxes, scores, cls, s.iou, s.max_det, s.agnostic)
    boxes = boxes[keep]
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
    return boxes.astype(np.float32), scores[keep].astype(np.float32), cls[keep].astype(np.int64)


def gather(per_image: List[Tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Detections:
    """One image's detections after another, as one batch's arrays with the image index."""
    if not per_image:
        return empty()
    image = np.concatenate([np.full(len(d[1]), i, dtype=np.int64) for i, d in enumerate(per_image)])
    return (np.concatenate([d[0] for d in per_image]).reshape(-1, 4).astype(np.float32),
            np.concatenate([d[1] for d in per_image]).astype(np.float32),
            np.concatenate([d[2] for d in per_image]).astype(np.int64), image)
