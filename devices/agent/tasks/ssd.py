"""SSD-style heads: two outputs, boxes [B, N, 4] and class scores [B, N, C] (already
softmax or sigmoid), in either order (the one whose last axis is 4 and the other's is not
is the boxes; with both 4, the first). Boxes are ``box_format`` (xyxy; TensorFlow's
yxyx; cxcywh), fractions of the input unless ``normalized: false``. With ``background``,
score column 0 is the background class: it is dropped, and class k + 1 is reported as k."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import ArtifactIncompatible
from ..taskspec import TaskSettings
from .boxes import to_xyxy
from .detect import Detections, finish, gather


def decode(outputs: List[np.ndarray], s: TaskSettings, input_hw: Tuple[int, int]) -> Detections:
    if len(outputs) < 2:
        raise ArtifactIncompatible("ssd decoder: the model has %d output(s); expected boxes [batch, boxes, 4] and "
                                   "scores [batch, boxes, classes]" % len(outputs))
    boxes, scores = np.asarray(outputs[0]), np.asarray(outputs[1])
    if boxes.shape[-1] != 4 and scores.shape[-1] == 4:
        boxes, scores = scores, boxes
    if boxes.ndim != 3 or scores.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[:2] != scores.shape[:2]:
        raise ArtifactIncompatible("ssd decoder: outputs have shapes %s and %s; expected [batch, boxes, 4] and "
                                   "[batch, boxes, classes]" % (list(boxes.shape), list(scores.shape)))
    if s.background:
        scores = scores[:, :, 1:]
    normalized = True if s.normalized is None else s.normalized
    return gather([finish(to_xyxy(b, s.box_format), c, s, input_hw, normalized) for b, c in zip(boxes, scores)])
