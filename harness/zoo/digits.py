"""scikit-learn's 8x8 digits as fixed train / calibration / test splits.

The data ships inside scikit-learn, so the built-in trained model needs no network. The
split is stratified and seeded so every machine gets the same rows; its hash goes into
the trained model's cache key. Calibration rows are disjoint from both train and test so
static quantization is never calibrated on the data it is scored on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from harness.variants.cache import ArtifactCache

SPLIT_SEED = 0
TEST_FRACTION = 0.20
CALIB_FRACTION = 0.10  # of the whole set
SPLITS = ("train", "calib", "test")
VERSION = "1"


def load_splits(seed: int = SPLIT_SEED) -> dict[str, tuple["np.ndarray", "np.ndarray"]]:
    """``{"train"|"calib"|"test": (x float32 (N,1,8,8) in [0,1], y int64)}``."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    n = len(y)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=round(TEST_FRACTION * n), stratify=y, random_state=seed
    )
    x_train, x_cal, y_train, y_cal = train_test_split(
        x_rest, y_rest, test_size=round(CALIB_FRACTION * n), stratify=y_rest, random_state=seed
    )
    return {"train": (x_train, y_train), "calib": (x_cal, y_cal), "test": (x_test, y_test)}


def split_hash(splits: dict[str, tuple["np.ndarray", "np.ndarray"]]) -> str:
    """sha256 over every split's arrays (names, shapes, bytes): identifies the data exactly."""
    h = hashlib.sha256()
    for name in SPLITS:
        for arr in splits[name]:
            h.update(f"{name}:{arr.dtype}:{arr.shape}".encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def write_splits(directory: Path, seed: int = SPLIT_SEED) -> dict[str, Any]:
    """Write ``train.npz``, ``calib.npz``, ``test.npz`` (arrays ``x``, ``y``); return meta."""
    import numpy as np

    splits = load_splits(seed)
    for name, (x, y) in splits.items():
        np.savez(directory / f"{name}.npz", x=x, y=y)
    return {"split_hash": split_hash(splits), "sizes": {k: len(v[1]) for k, v in splits.items()}, "seed": seed}


def ensure_digits(cache: "ArtifactCache", seed: int = SPLIT_SEED) -> tuple[Path, dict[str, Any]]:
    """The cached split directory and its meta (written on first use)."""
    import sklearn

    material = {"dataset": "sklearn-digits", "version": VERSION, "seed": seed, "sklearn": sklearn.__version__,
                "test_fraction": TEST_FRACTION, "calib_fraction": CALIB_FRACTION}
    directory, meta, _ = cache.get_or_build("data", material, lambda d: write_splits(d, seed))
    return directory, meta
