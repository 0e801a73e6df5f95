"""YOLOv5-style head (Ultralytics' YOLOv5 and YOLOv7 exports): one output [B, N, 5 + C] per
batch, columns cx, cy, w, h (input pixels), objectness, then C class probabilities (both
already sigmoid). A class's score is objectness x class probability, and boxes whose
objectness is at or below ``conf`` are dropped first, as YOLOv5's own NMS does."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import ArtifactIncompatible
from ..taskspec import TaskSettings
from .boxes import cxcywh_to_xyxy
from .detect import Detections, finish, gather


def decode(outputs: List[np.ndarray], s: TaskSettings, input_hw: Tuple[int, int]) -> Detections:
    out = np.asarray(outputs[0])
    if out.ndim != 3 or out.shape[2] < 6:
        raise ArtifactIncompatible("yolov5 decoder: first output has shape %s; expected [batch, boxes, 5 + classes]"
                                   % list(out.shape))
    normalized = bool(s.normalized)
    per_image = []
    for p in out:
        p = p[p[:, 4] > s.conf].astype(np.float32)
        per_image.append(finish(cxcywh_to_xyxy(p[:, :4]), p[:, 5:] * p[:, 4:5], s, input_hw, normalized))
    return gather(per_image)
