"""YOLOv8-style head (Ultralytics' ONNX/TFLite export of v8, v11 and later): one output
[B, 4 + C, N] per batch, rows cx, cy, w, h (input pixels) then C class scores (already
sigmoid), no objectness. Further outputs (a segmentation model's mask prototypes) are
ignored."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import ArtifactIncompatible
from ..taskspec import TaskSettings
from .boxes import cxcywh_to_xyxy
from .detect import Detections, finish, gather


def decode(outputs: List[np.ndarray], s: TaskSettings, input_hw: Tuple[int, int]) -> Detections:
    out = np.asarray(outputs[0])
    if out.ndim != 3 or out.shape[1] < 5:
        raise ArtifactIncompatible("yolov8 decoder: first output has shape %s; expected [batch, 4 + classes, boxes]"
                                   % list(out.shape))
    normalized = bool(s.normalized)
    per_image = []
    for p in out:
        p = p.T  # [N, 4 + C]
        per_image.append(finish(cxcywh_to_xyxy(p[:, :4]), p[:, 4:], s, input_hw, normalized))
    return gather(per_image)
