"""``calib:`` and ``train:`` from the files people have; a variant built from seeded synthetic
inputs is marked, and pruning or distillation without train data refuse unless the suite asks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import harness.store
from devices.agent.spec import MeasureSettings
from harness.config.suite import FactoryModel, ImagesData, Suite
from harness.errors import VariantBuildError
from harness.records import Job, JobResult, JobSettings
from harness.variants import ArtifactCache, build_variant
from harness.variants.base import SYNTHETIC_NOTE
from harness.variants.quality import variant_record
from harness.zoo import resolve_model

SHAPE = [1, 3, 16, 16]


def photos(root: Path, n: int, seed: int, tint: tuple[int, int, int] = (0, 0, 0)) -> Path:
    """``n`` seeded noise photos (20 x 16 px), shifted towards ``tint``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = np.clip(rng.integers(0, 156, (16, 20, 3)) + np.array(tint), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(root / f"{i:02d}.png")
    return root


def model(tmp_path: Path, **keys: object) -> FactoryModel:
    suite = Suite.model_validate({"name": "s", "models": [{"name": "tiny", "factory": "data_fixture_nets:build",
                                                           "input_shape": SHAPE, **keys}]},
                                 context={"base_dir": tmp_path})
    return suite.models[0]


@pytest.fixture()
def folders(tmp_path: Path) -> Path:
    photos(tmp_path / "calib", 8, seed=1)
    photos(tmp_path / "train" / "red", 6, seed=2, tint=(100, 0, 0))
    photos(tmp_path / "train" / "blue", 6, seed=3, tint=(0, 0, 100))
    return tmp_path


def test_calib_and_train_take_an_npz_an_imagefolder_or_unlabelled_images(folders: Path) -> None:
    m = model(folders, calib={"images": "calib"}, train={"imagefolder": "train"})
    assert isinstance(m.calib, ImagesData) and m.calib.images == folders / "calib"
    assert m.train is not None and m.train.imagefolder == folders / "train" and not m.synthetic_data
    np.savez(folders / "c.npz", x=np.zeros((2, *SHAPE[1:]), np.float32))
    assert model(folders, calib="c.npz").calib == folders / "c.npz"
    with pytest.raises(ValueError, match=r"expected an npz file, \{imagefolder: DIR\} or \{images: DIR\}"):
        model(folders, calib={"coco": "a.json", "images": "calib"})
    with pytest.raises(ValueError, match="folder not found"):
        model(folders, train={"images": "nowhere"})
    (folders / "m.onnx").write_bytes(b"onnx")
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):  # an ONNX model is not trained
        Suite.model_validate({"name": "s", "models": [{"name": "o", "onnx": "m.onnx", "input_shape": SHAPE,
                                                       "train": {"images": "calib"}}]}, context={"base_dir": folders})


def test_int8_on_synthetic_inputs_is_marked_and_real_calibration_is_not(folders: Path, tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    bare = resolve_model(model(folders), cache)
    noise = build_variant(bare, "int8-static", cache)
    note = noise.notes[SYNTHETIC_NOTE]
    assert note.startswith("int8-static: calibrated on ") and "synthetic" in note
    real_src = resolve_model(model(folders, calib={"images": "calib"}), cache)
    assert real_src.calib_path is not None and real_src.data_hash
    with np.load(real_src.calib_path) as f:
        assert f["x"].shape == (8, 3, 16, 16) and f["x"].dtype == np.float32
    real = build_variant(real_src, "int8-static", cache)
    assert SYNTHETIC_NOTE not in real.notes and real.variant_id != noise.variant_id  # the data is in the id
    # Other images: another variant; the same ones again: the cached one.
    photos(folders / "calib", 1, seed=9)
    changed = build_variant(resolve_model(model(folders, calib={"images": "calib"}), cache), "int8-static", cache)
    assert changed.variant_id != real.variant_id and not changed.cached
    # The mark reaches the store: the variant's row and every result that joins it.
    with harness.store.open(tmp_path / "h.db") as st:
        run = st.create_run(suite="s", config={})
        jobs = [Job("tiny", v.chain, "local", "onnxruntime", JobSettings(MeasureSettings(min_iters=1)))
                for v in (noise,)]
        ids = st.add_jobs(run, jobs)
        st.record(ids[jobs[0].key], JobResult("ok", metrics={"p50_ms": 1.0, "n_iters": 1},
                                              variant=variant_record(noise, {})))
        row = st.results(run=run).iloc[0]
        assert row.synthetic == note
        stored = st.variants().iloc[0]
        assert stored.synthetic == note and stored.notes[SYNTHETIC_NOTE] == note


def test_training_without_train_data_refuses_unless_the_suite_asks_for_synthetic(folders: Path, tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    bare = resolve_model(model(folders), cache)
    with pytest.raises(VariantBuildError, match=r"prune-l1-30: tiny has no train data: give the model 'train:'"):
        build_variant(bare, "prune-l1-30", cache)
    with pytest.raises(VariantBuildError, match="synthetic_data: true"):
        build_variant(bare, "distill", cache, {"distill": {"kind": "distill", "student": "data_fixture_nets:build"}})
    # Pruning without fine-tuning trains nothing: nothing to refuse.
    assert SYNTHETIC_NOTE not in build_variant(bare, "p0", cache, {"p0": {"kind": "prune-l1", "amount": 0.3,
                                                                           "finetune_epochs": 0}}).notes
    allowed = resolve_model(model(folders, synthetic_data=True), cache)
    marked = build_variant(allowed, "prune-l1-30", cache)
    assert "trained on seeded synthetic inputs" in marked.notes[SYNTHETIC_NOTE]
    # Cached with leave, asked again without it: still refused (the rule is checked before the cache).
    with pytest.raises(VariantBuildError, match="has no train data"):
        build_variant(replace(allowed, synthetic_data=False), "prune-l1-30", cache)
    # Real inputs without labels: the pruned model matches the original on them, unmarked.
    unlabelled = resolve_model(model(folders, train={"images": "calib"}), cache)
    assert SYNTHETIC_NOTE not in build_variant(unlabelled, "prune-l1-30", cache).notes
    labelled = resolve_model(model(folders, train={"imagefolder": "train"}), cache)
    with np.load(labelled.train_path) as f:
        assert f["y"].tolist() == [0] * 6 + [1] * 6  # blue, red: sorted class folders
    pruned = build_variant(labelled, "prune-l1-30", cache)
    assert SYNTHETIC_NOTE not in pruned.notes and pruned.variant_id != marked.variant_id
