"""Greedy non-maximum suppression in numpy, class-wise.

As torchvision's ``batched_nms`` does it: boxes of different classes are shifted apart by
an offset larger than any coordinate, so one greedy pass never lets a box of one class
suppress a box of another (``agnostic``: no shift, every class competes). The pass visits
boxes in descending score order and stops once ``max_det`` are kept: the boxes it would
keep later score lower than all of those, so the result is the same as a full pass cut
to ``max_det``.
"""

from __future__ import annotations

import numpy as np

from .boxes import box_iou


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Indices of the boxes kept, best score first: each suppresses the later ones whose
    IoU with it is above ``iou``. Ties in score keep the earlier index first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_det: int,
                agnostic: bool = False) -> np.ndarray:
    """NMS within each class (across classes when ``agnostic``); indices kept, best first."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if agnostic:
        return nms(boxes, scores, iou, max_det)
    span = float(np.max(np.abs(boxes))) + 1.0
    shifted = boxes.astype(np.float64) + (classes.astype(np.float64) * (2 * span))[:, None]
    return nms(shifted, scores, iou, max_det)
