"""Eval sets from the files people have (``harness.tasks.data``): an ImageFolder tree, a COCO
JSON with its images and a masks folder, prepared once into cached npz files; and the suite's
``task:`` and ``eval:`` keys that name them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.config.suite import CocoEval, ImageFolderEval, MasksEval, Preprocess, Suite
from harness.errors import ConfigError
from harness.tasks import data
from harness.tasks.metrics import to_original
from harness.tasks.plan import plan_task
from harness.variants.cache import ArtifactCache

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def png(path: Path, size: tuple[int, int], color: tuple[int, int, int], box: tuple[int, int, int, int] | None = None,
        background: tuple[int, int, int] = (0, 0, 0)) -> Path:
    """A PNG of ``size`` (w, h) in ``background``, with ``box`` (x, y, w, h) in ``color`` (or all of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, background if box else color)
    if box:
        x, y, w, h = box
        im.paste(Image.new("RGB", (w, h), color), (x, y))
    im.save(path)
    return path


@pytest.fixture()
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


def imagefolder(root: Path) -> Path:
    png(root / "cat" / "a.png", (8, 6), RED)
    png(root / "cat" / "b.png", (5, 5), GREEN)
    png(root / "dog" / "c.png", (4, 4), BLUE)
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_an_imagefolder_becomes_inputs_and_labels(tmp_path: Path, cache: ArtifactCache) -> None:
    src = ImageFolderEval(imagefolder=imagefolder(tmp_path / "folder"),
                          preprocess=Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    path = data.prepare_imagefolder(src, (1, 3, 4, 4), cache)
    with np.load(path) as f:
        x, y, classes = f["x"], f["y"], f["classes"]
        assert str(f["layout"][0]) == "nchw" and f["prep_ms"][0] > 0
    assert x.shape == (3, 3, 4, 4) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 1] and classes.tolist() == ["cat", "dog"]
    np.testing.assert_allclose(x[0, :, 1, 1], [1.0, -1.0, -1.0])  # red, (p / 255 - 0.5) / 0.5
    np.testing.assert_allclose(x[2, :, 1, 1], [-1.0, -1.0, 1.0])  # blue
    assert data.prepare_imagefolder(src, (1, 3, 4, 4), cache) == path  # cached: prepared once
    png(tmp_path / "folder" / "dog" / "c.png", (4, 4), GREEN)  # the same name, other content
    assert data.prepare_imagefolder(src, (1, 3, 4, 4), cache) != path


def test_channel_order_layout_and_integer_inputs(tmp_path: Path, cache: ArtifactCache) -> None:
    root = imagefolder(tmp_path / "folder")
    bgr = ImageFolderEval(imagefolder=root, classes=("dog",),
                          preprocess=Preprocess(channels="bgr", layout="nhwc", dtype="uint8"))
    with np.load(data.prepare_imagefolder(bgr, (1, 2, 2, 3), cache)) as f:
        assert f["x"].shape == (1, 2, 2, 3) and f["x"].dtype == np.uint8 and f["y"].tolist() == [0]
        assert f["x"][0, 0, 0].tolist() == [255, 0, 0]  # blue first in BGR
    with pytest.raises(ConfigError, match="1 channel"):
        data.prepare_imagefolder(bgr, (1, 2, 2, 1), cache)
    with pytest.raises(ConfigError, match="no class folder 'bird'"):
        data.prepare_imagefolder(ImageFolderEval(imagefolder=root, classes=("bird",)), (1, 3, 2, 2), cache)


def coco_folder(root: Path) -> tuple[Path, Path]:
    """Two images of different sizes with a red square each, and their COCO JSON."""
    boxes = {1: ((80, 40), (10, 8, 20, 16)), 2: ((30, 60), (5, 30, 20, 20))}
    for i, (size, box) in boxes.items():
        png(root / "images" / f"{i:03d}.png", size, RED, box)
    ann = {
        "images": [{"id": i, "file_name": f"{i:03d}.png", "width": s[0], "height": s[1]} for i, (s, _) in boxes.items()],
        "annotations": [{"id": 10 + i, "image_id": i, "category_id": 5, "bbox": list(b), "area": b[2] * b[3],
                         "iscrowd": 0} for i, (_, b) in boxes.items()],
        "categories": [{"id": 9, "name": "b"}, {"id": 5, "name": "a"}],
    }  # fmt: skip
    (root / "ann.json").write_text(json.dumps(ann))
    return root / "ann.json", root / "images"


def test_a_coco_set_is_letterboxed_and_keeps_the_geometry_and_ground_truth(tmp_path: Path, cache: ArtifactCache) -> None:
    ann, images = coco_folder(tmp_path / "coco")
    path = data.prepare_coco(CocoEval(coco=ann, images=images), (1, 3, 32, 32), cache)
    with np.load(path) as f:
        d = {k: f[k] for k in f.files}
    assert d["x"].shape == (2, 3, 32, 32) and d["image_id"].tolist() == [1, 2]
    assert d["category_ids"].tolist() == [5, 9]  # sorted by id: model class 0 is category 5
    assert d["gt_category"].tolist() == [5, 5] and d["gt_image"].tolist() == [0, 1]
    np.testing.assert_allclose(d["ratio"], [[0.4, 0.4], [32 / 60, 16 / 30]])
    np.testing.assert_allclose(d["pad"], [[8, 0], [0, 8]])  # 80x40 -> 32x16, 8 rows above; 30x60 -> 16x32
    assert np.allclose(d["x"][0, :, 0, 0], 114 / 255)  # the letterbox's grey
    # The ground truth mapped into the input covers the red square: the board's coordinates.
    for i in range(2):
        x, y, w, h = d["gt_bbox"][i]
        ry, rx = d["ratio"][i]
        top, left = d["pad"][i]
        inside = d["x"][i, :, round(top + (y + h / 2) * ry), round(left + (x + w / 2) * rx)]
        np.testing.assert_allclose(inside, [1, 0, 0], atol=0.02)
        box = np.array([[left + x * rx, top + y * ry, left + (x + w) * rx, top + (y + h) * ry]])
        np.testing.assert_allclose(to_original(box, np.array([i]), d)[0], [x, y, w, h], atol=1e-9)


def test_a_coco_set_missing_an_image_names_it(tmp_path: Path, cache: ArtifactCache) -> None:
    ann, images = coco_folder(tmp_path / "coco")
    (images / "002.png").unlink()
    with pytest.raises(ConfigError, match="002.png"):
        data.prepare_coco(CocoEval(coco=ann, images=images), (1, 3, 32, 32), cache)
    first = data.prepare_coco(CocoEval(coco=ann, images=images, max_images=1), (1, 3, 32, 32), cache)
    with np.load(first) as f:
        assert f["image_id"].tolist() == [1] and f["gt_image"].tolist() == [0]


def test_masks_are_resized_by_nearest_neighbour_and_padding_is_ignored(tmp_path: Path, cache: ArtifactCache) -> None:
    png(tmp_path / "img" / "a.png", (4, 2), GREEN)
    mask = np.array([[0, 1, 1, 2], [0, 1, 2, 2]], np.uint8)
    (tmp_path / "mask").mkdir()
    Image.fromarray(mask, "L").save(tmp_path / "mask" / "a.png")
    png(tmp_path / "img" / "b.png", (4, 2), GREEN)  # no mask of that name: left out
    src = MasksEval(images=tmp_path / "img", masks=tmp_path / "mask", preprocess=Preprocess(resize="letterbox"))
    with np.load(data.prepare_masks(src, (1, 3, 8, 8), cache)) as f:
        x, y = f["x"], f["y"]
    assert x.shape == (1, 3, 8, 8) and y.shape == (1, 8, 8)
    assert (y[0, :2] == data.IGNORE).all() and (y[0, 6:] == data.IGNORE).all()  # 4x2 -> 8x4, 2 rows above and below
    assert y[0, 2].tolist() == [0, 0, 1, 1, 1, 1, 2, 2] and y[0, 5].tolist() == [0, 0, 1, 1, 2, 2, 2, 2]


# -- the suite's task: and eval: ----------------------------------------------------------------


def suite(tmp_path: Path, model: dict) -> Suite:
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    return Suite.model_validate({"name": "s", "models": [{"name": "m", "onnx": "m.onnx", "input_shape": [1, 3, 32, 32],
                                                          **model}]}, context={"base_dir": tmp_path})


def test_the_suite_names_a_task_and_its_eval_files(tmp_path: Path, cache: ArtifactCache) -> None:
    ann, images = coco_folder(tmp_path / "coco")
    model = suite(tmp_path, {"eval": {"coco": "coco/ann.json", "images": "coco/images"},
                             "task": {"kind": "detection", "decode": "yolov5", "conf": 0.01, "max_det": 100}}).models[0]
    assert isinstance(model.eval, CocoEval) and model.eval.preprocess.resize == "letterbox"
    plan = plan_task(model, cache)
    assert plan is not None and plan.kind == "detection" and plan.decoder is None
    assert (plan.settings.decode, plan.settings.conf, plan.settings.max_det, plan.settings.raw) == ("yolov5", 0.01, 100, False)
    assert plan.eval_path.is_file()
    user = suite(tmp_path, {"eval": {"coco": "coco/ann.json", "images": "coco/images"},
                            "task": {"kind": "detection", "decode": "mypkg.heads:decode"}}).models[0]
    plan = plan_task(user, cache)
    assert plan is not None and plan.decoder == "mypkg.heads:decode"
    assert plan.settings.raw and plan.settings.decode is None  # decoded here: the board sends raw outputs


@pytest.mark.parametrize(("model", "message"), [
    ({"task": {"kind": "detection", "decode": "yolov8"}}, "a detection task needs an eval set"),
    ({"eval": {"coco": "coco/ann.json", "images": "coco/images"}}, "is a detection set: give the model 'task: {kind: detection"),
    ({"eval": {"coco": "coco/ann.json", "images": "coco/images"}, "task": {"kind": "segmentation"}}, ", not segmentation"),
    ({"task": {"kind": "detection", "decode": "yolo-nas"}}, "String should match pattern"),
    ({"task": {"kind": "custom"}}, "metric"),
    ({"task": {"kind": "ocr"}}, "does not match any of the expected tags"),
    ({"eval": {"imagefolder": "nowhere"}}, "folder not found"),
    ({"eval": {"images": "coco"}}, "eval is an npz file"),
])  # fmt: skip
def test_a_task_that_does_not_fit_its_eval_set_is_a_config_error(tmp_path: Path, model: dict, message: str) -> None:
    coco_folder(tmp_path / "coco")
    with pytest.raises(ValueError, match=message):
        suite(tmp_path, model)
