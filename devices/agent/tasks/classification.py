"""Classification: the ``top_k`` best classes of the first output, per image, best first."""

from __future__ import annotations

from typing import List

import numpy as np

from ..errors import ArtifactIncompatible


def top_k(outputs: List[np.ndarray], k: int, batch: int) -> np.ndarray:
    """[batch, k] class indices (int64), best first (ties: the lower index first); k is
    capped at the number of classes."""
    out = np.asarray(outputs[0])
    if out.size % batch:
        raise ArtifactIncompatible("first output has shape %s; cannot read it as class scores of %d samples"
                                   % (list(out.shape), batch))
    scores = out.reshape(batch, -1)
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)
