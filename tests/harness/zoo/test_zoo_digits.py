"""The digits splits and the built-in digits CNN (trained once per session)."""

from __future__ import annotations

import numpy as np

from harness.config.suite import BuiltinModel
from harness.zoo import resolve_model
from harness.zoo.digits import ensure_digits, load_splits, split_hash


def test_split_sizes_types_and_stratification():
    splits = load_splits()
    sizes = {k: len(v[1]) for k, v in splits.items()}
    assert sizes == {"train": 1258, "calib": 180, "test": 359}  # 1797 = 70/10/20 %
    all_y = np.concatenate([y for _, y in splits.values()])
    overall = np.bincount(all_y, minlength=10) / len(all_y)
    for x, y in splits.values():
        assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8) and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0
        share = np.bincount(y, minlength=10) / len(y)
        assert np.abs(share - overall).max() < 0.02  # stratified: every class in proportion


def test_splits_are_disjoint_and_deterministic():
    a, b = load_splits(), load_splits()
    assert split_hash(a) == split_hash(b)
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
    rows = {k: {r.tobytes() for r in v[0]} for k, v in a.items()}
    assert not rows["test"] & rows["train"] and not rows["calib"] & rows["test"] and not rows["calib"] & rows["train"]
    assert split_hash(load_splits(seed=1)) != split_hash(a)


def test_splits_written_as_npz(artifact_cache):
    directory, meta = ensure_digits(artifact_cache)
    for name, n in meta["sizes"].items():
        with np.load(directory / f"{name}.npz") as f:
            assert set(f.files) == {"x", "y"} and len(f["y"]) == n


def test_digits_cnn_trains_and_is_cached(digits_source, artifact_cache):
    src = digits_source
    assert src.meta["fp32_accuracy"] >= 0.95
    assert src.meta["train_s"] > 0  # recorded (how long it takes is a benchmark's business, not a test's)
    with np.load(src.eval_path) as f:
        x, y = f["x"], f["y"]
    from harness.zoo.weights import accuracy

    assert accuracy(src.load_module(), x, y) == src.meta["fp32_accuracy"]

    state_mtime = src.torch_state.stat().st_mtime_ns
    again = resolve_model(BuiltinModel(builtin="digits-cnn", name="digits-again"), artifact_cache)
    assert again.meta["cached"] is True  # no retraining
    assert again.content_hash == src.content_hash and again.torch_state == src.torch_state
    assert again.torch_state.stat().st_mtime_ns == state_mtime
    assert again.meta["train_s"] == src.meta["train_s"]
    assert again.name == "digits-again" and src.name == "digits-cnn"
    assert src.calib_path.is_file() and src.train_path.is_file() and src.num_classes == 10
