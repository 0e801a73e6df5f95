"""Box conversions shared by the decoders: every decoder returns x1, y1, x2, y2 in input pixels."""

from __future__ import annotations

import numpy as np


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) rows -> (x1, y1, x2, y2) rows, float32."""
    b = np.asarray(b, dtype=np.float32)
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1)


def yxyx_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(y1, x1, y2, x2) rows (TensorFlow's order) -> (x1, y1, x2, y2) rows."""
    b = np.asarray(b, dtype=np.float32)
    return b[:, [1, 0, 3, 2]]


def to_xyxy(b: np.ndarray, fmt: str) -> np.ndarray:
    """Rows in ``fmt`` (xyxy, yxyx, cxcywh) as x1, y1, x2, y2."""
    if fmt == "cxcywh":
        return cxcywh_to_xyxy(b)
    if fmt == "yxyx":
        return yxyx_to_xyxy(b)
    return np.asarray(b, dtype=np.float32)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1, y1, x2, y2 box with each row of ``boxes`` (0 where both are empty)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
