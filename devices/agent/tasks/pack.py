"""Arrays in a result event: one npz (compressed), base64 in a JSON string.

Exact (float32 stays float32), compact (a set's detections are a few bytes each), and read
back with ``numpy.load(..., allow_pickle=False)`` on the coordinator.
"""

from __future__ import annotations

import base64
import io
from typing import Dict

import numpy as np


def pack(arrays: Dict[str, np.ndarray]) -> str:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def unpack(text: str) -> Dict[str, np.ndarray]:
    with np.load(io.BytesIO(base64.b64decode(text.encode("ascii"), validate=True)), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
