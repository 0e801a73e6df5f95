"""Segmentation: per-pixel argmax over classes against the label masks, as confusion counts.

Outputs are read as [B, C, H, W] or [B, H, W, C] class scores (the class axis is the one
the mask's height and width are not; a model that emits [B, H, W] class indices is taken
as it is). Predictions of another size than the masks are resized to them by nearest
neighbour. Pixels labelled ``ignore_index`` (255, as in VOC and Cityscapes) and labels
outside [0, C) are left out. The counts of the whole set are summed on the board: the
coordinator reads mIoU and pixel accuracy off one C x C matrix.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import ArtifactIncompatible


def class_map(output: np.ndarray, mask_hw: Tuple[int, int], layout: str) -> Tuple[np.ndarray, int]:
    """[B, H, W] predicted classes at the masks' size, and the number of classes (0 when
    the model emits class indices)."""
    out = np.asarray(output)
    if out.ndim == 3:
        pred, classes = out.astype(np.int64), 0
    elif out.ndim == 4:
        if tuple(out.shape[2:]) == tuple(mask_hw):
            axis = 1
        elif tuple(out.shape[1:3]) == tuple(mask_hw):
            axis = 3
        else:
            axis = 1 if layout == "nchw" else 3
        pred, classes = np.argmax(out, axis=axis).astype(np.int64), int(out.shape[axis])
    else:
        raise ArtifactIncompatible("segmentation: first output has shape %s; expected [batch, classes, height, width]"
                                   % list(out.shape))
    if tuple(pred.shape[1:]) != tuple(mask_hw):
        h, w = pred.shape[1:]
        rows = (np.arange(mask_hw[0]) * h // mask_hw[0]).astype(np.int64)
        cols = (np.arange(mask_hw[1]) * w // mask_hw[1]).astype(np.int64)
        pred = pred[:, rows][:, :, cols]
    return pred, classes


def confusion(outputs: List[np.ndarray], masks: np.ndarray, ignore_index: int, layout: str,
              num_classes: int = 0) -> np.ndarray:
    """[C, C] counts: row the label, column the prediction (int64). ``num_classes``: at
    least this many (the counts of earlier batches)."""
    masks = np.asarray(masks).astype(np.int64)
    pred, classes = class_map(outputs[0], tuple(masks.shape[1:3]), layout)
    if pred.shape[0] != masks.shape[0]:
        raise ArtifactIncompatible("segmentation: %d predictions for %d masks" % (pred.shape[0], masks.shape[0]))
    if classes:
        c = classes
    else:  # class indices: as many classes as the labels and predictions show
        labelled = (masks != ignore_index) & (masks >= 0)
        c = max(num_classes, int(pred.max()) + 1 if pred.size else 0,
                int(masks[labelled].max()) + 1 if labelled.any() else 0, 1)
    valid = (masks != ignore_index) & (masks >= 0) & (masks < c)
    pred = np.clip(pred, 0, c - 1)
    idx = masks[valid] * c + pred[valid]
    return np.bincount(idx, minlength=c * c).reshape(c, c).astype(np.int64)


def add(total: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum two confusion matrices, growing the smaller one."""
    n = max(total.shape[0], counts.shape[0])
    out = np.zeros((n, n), dtype=np.int64)
    out[: total.shape[0], : total.shape[0]] += total
    out[: counts.shape[0], : counts.shape[0]] += counts
    return out
