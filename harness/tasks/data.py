"""Eval sets from the files people have, prepared once into npz artifacts (boards need no
image library, and the npz form is what the board reads).

Each is cached under a content key: the sha256 of every file read, the preprocessing,
the input shape and this module's ``VERSION``, so a changed image, label or setting
prepares again and nothing else does.

What each npz holds (the arrays a hand-made npz must have for the same task):

- classification (ImageFolder): ``x`` [N, ...input], ``y`` [N] class indices, ``classes``.
- detection (COCO): ``x``; per image ``image_id``, ``orig_hw`` (height, width), ``ratio``
  (y, x: input pixels per original pixel) and ``pad`` (top, left: where the original's
  origin lands in the input), which map the board's boxes back to the original image; the
  ground truth ``gt_image`` (index into x), ``gt_bbox`` (x, y, w, h in original pixels),
  ``gt_category``, ``gt_iscrowd``, ``gt_area``; ``category_ids`` (model class i -> COCO id).
- segmentation (masks): ``x``, ``y`` [N, H, W] label masks at the input's size (nearest
  neighbour; pixels outside the image after letterboxing are ``IGNORE``).
- unlabelled images (calibration, training by matching outputs): ``x`` only.

Every prepared npz also has ``layout`` and ``prep_ms`` (the coordinator's preprocessing
per image, ms), each an array of one element (every array of the npz has a first axis).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config.suite import CocoEval, ImageFolderEval, ImagesData, MasksEval, Preprocess
    from harness.variants.cache import ArtifactCache

VERSION = "1"  # bump when the preparation changes what it writes
IGNORE = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FILE = "eval.npz"


@dataclass(frozen=True)
class Geometry:
    """How an original image maps into the input: input = original * ratio + pad (y, x)."""

    orig_hw: tuple[int, int]
    ratio: tuple[float, float]
    pad: tuple[float, float]


def input_hw(shape: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    """(height, width, channels) of a 4-D input shape in ``layout``."""
    if len(shape) != 4:
        raise ConfigError(f"an image eval set needs a 4-D input shape (batch, ...), got {list(shape)}")
    if layout == "nchw":
        return int(shape[2]), int(shape[3]), int(shape[1])
    return int(shape[1]), int(shape[2]), int(shape[3])


def _resized(im: Any, hw: tuple[int, int], how: str, fill: int | tuple[int, ...], resample: int) -> tuple[Any, Geometry]:
    """``im`` (a PIL image) brought to ``hw`` by ``how``, and where its pixels went."""
    from PIL import Image

    h, w = hw
    ow, oh = im.size
    if how == "stretch":
        return im.resize((w, h), resample), Geometry((oh, ow), (h / oh, w / ow), (0.0, 0.0))
    if how == "letterbox":
        r = min(h / oh, w / ow)
        nw, nh = max(1, round(ow * r)), max(1, round(oh * r))
        top, left = (h - nh) // 2, (w - nw) // 2
        canvas = Image.new(im.mode, (w, h), fill)
        canvas.paste(im.resize((nw, nh), resample), (left, top))
        return canvas, Geometry((oh, ow), (nh / oh, nw / ow), (float(top), float(left)))
    r = max(h / oh, w / ow)  # center-crop
    nw, nh = max(w, round(ow * r)), max(h, round(oh * r))
    top, left = (nh - h) // 2, (nw - w) // 2
    cropped = im.resize((nw, nh), resample).crop((left, top, left + w, top + h))
    return cropped, Geometry((oh, ow), (nh / oh, nw / ow), (float(-top), float(-left)))


def load_image(path: Path, pre: Preprocess, hw: tuple[int, int]) -> tuple[np.ndarray, Geometry]:
    """One image as the input's pixels [H, W, C] (uint8, before scaling) and its geometry."""
    from PIL import Image

    try:
        with Image.open(path) as raw:
            im = raw.convert("L" if pre.channels == "gray" else "RGB")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read image {path}: {exc}") from None
    fill = pre.pad_value if pre.channels == "gray" else (pre.pad_value,) * 3
    im, geo = _resized(im, hw, pre.resize, fill, Image.Resampling.BILINEAR)
    a = np.asarray(im, dtype=np.uint8)
    a = a[:, :, None] if a.ndim == 2 else a
    return (a[:, :, ::-1] if pre.channels == "bgr" else a), geo


def load_mask(path: Path, pre: Preprocess, hw: tuple[int, int]) -> np.ndarray:
    """A label mask at the input's size (nearest neighbour; padding is ``IGNORE``)."""
    from PIL import Image

    try:
        with Image.open(path) as raw:
            im = raw if raw.mode in ("L", "P", "I", "I;16") else raw.convert("L")
            im.load()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read mask {path}: {exc}") from None
    if im.mode == "P":
        im = Image.fromarray(np.asarray(im, dtype=np.uint8), "L")  # palette indices are the classes
    elif im.mode != "L":
        im = Image.fromarray(np.asarray(im).astype(np.int32).clip(0, 255).astype(np.uint8), "L")
    out, _ = _resized(im, hw, pre.resize, IGNORE, Image.Resampling.NEAREST)
    return np.asarray(out, dtype=np.uint8)


def to_input(pixels: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Pixels [N, H, W, C] (uint8) as the model's input: dtype, scaling and layout."""
    if pre.dtype == "uint8":
        x = pixels
    elif pre.dtype == "int8":
        x = (pixels.astype(np.int16) - 128).astype(np.int8)
    else:
        x = pixels.astype(np.float32) * np.float32(pre.scale)
        x = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
        x = x.astype(pre.dtype)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if pre.layout == "nchw" else x)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _digest(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(root).as_posix()}\0{_file_sha(p)}\n".encode())
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    from harness.hashing import sha256_file

    return sha256_file(path)


def _check_channels(channels: int, pre: Preprocess, shape: tuple[int, ...]) -> None:
    want = 1 if pre.channels == "gray" else 3
    if channels != want:
        raise ConfigError(f"the input shape {list(shape)} has {channels} channel(s) in layout {pre.layout}; "
                          f"preprocess.channels {pre.channels} gives {want}")


def _pixels(paths: list[Path], pre: Preprocess, hw: tuple[int, int]) -> tuple[np.ndarray, list[Geometry], float]:
    t0 = time.perf_counter()
    loaded = [load_image(p, pre, hw) for p in paths]
    ms = (time.perf_counter() - t0) * 1e3 / max(1, len(paths))
    if not loaded:
        raise ConfigError("the eval set has no images")
    return np.stack([a for a, _ in loaded]), [g for _, g in loaded], ms


def prepare_imagefolder(src: ImageFolderEval, shape: tuple[int, ...], cache: ArtifactCache) -> Path:
    """``eval: {imagefolder: DIR}`` as an npz: x, y (the class folder's index), classes."""
    pre = src.preprocess
    h, w, c = input_hw(shape, pre.layout)
    _check_channels(c, pre, shape)
    root = Path(src.imagefolder)
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = list(src.classes or found)
    missing = [name for name in classes if name not in found]
    if missing:
        raise ConfigError(f"{root}: no class folder {missing[0]!r}", field="eval.classes")
    pairs = [(p, i) for i, name in enumerate(classes) for p in _images(root / name)]
    pairs = pairs[: src.max_images] if src.max_images else pairs
    if not pairs:
        raise ConfigError(f"{root}: no images in its class folders", field="eval.imagefolder")
    key = {"v": VERSION, "kind": "imagefolder", "files": _digest([p for p, _ in pairs], root), "classes": classes,
           "labels": [i for _, i in pairs], "preprocess": pre.model_dump(mode="json"), "shape": list(shape)}

    def build(out: Path) -> dict[str, Any]:
        pixels, _, ms = _pixels([p for p, _ in pairs], pre, (h, w))
        np.savez(out / FILE, x=to_input(pixels, pre), y=np.array([i for _, i in pairs], np.int64),
                 classes=np.array(classes), layout=np.array([pre.layout]), prep_ms=np.array([ms]))
        return {"images": len(pairs), "classes": len(classes), "prep_ms": ms}

    directory, _, _ = cache.get_or_build("evalsets", key, build)
    return directory / FILE


def prepare_coco(src: CocoEval, shape: tuple[int, ...], cache: ArtifactCache) -> Path:
    """``eval: {coco: JSON, images: DIR}`` as an npz: x, the geometry of each image and the
    ground truth (module docstring)."""
    pre = src.preprocess
    h, w, c = input_hw(shape, pre.layout)
    _check_channels(c, pre, shape)
    try:
        gt = json.loads(Path(src.coco).read_text(encoding="utf-8"))
        images = sorted(gt["images"], key=lambda im: im["id"])
        anns = gt.get("annotations", [])
        cats = sorted(int(cat["id"]) for cat in gt.get("categories", []))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read COCO annotations {src.coco}: {type(exc).__name__}: {exc}", field="eval.coco") from None
    images = images[: src.max_images] if src.max_images else images
    if not images:
        raise ConfigError(f"{src.coco} lists no images", field="eval.coco")
    category_ids = list(src.category_ids or cats)
    if not category_ids:
        raise ConfigError(f"{src.coco} has no categories: give eval.category_ids", field="eval.coco")
    root = Path(src.images)
    paths = [root / im["file_name"] for im in images]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise ConfigError(f"image {absent[0]} named in {src.coco} is not there ({len(absent)} missing)", field="eval.images")
    index = {int(im["id"]): i for i, im in enumerate(images)}
    mine = [a for a in anns if int(a["image_id"]) in index]
    key = {"v": VERSION, "kind": "coco", "files": _digest(paths, root), "json": _file_sha(Path(src.coco)),
           "images": [int(im["id"]) for im in images], "category_ids": category_ids,
           "preprocess": pre.model_dump(mode="json"), "shape": list(shape)}

    def build(out: Path) -> dict[str, Any]:
        pixels, geos, ms = _pixels(paths, pre, (h, w))
        bbox = np.array([[float(v) for v in a["bbox"]] for a in mine], np.float64).reshape(-1, 4)
        np.savez(
            out / FILE, x=to_input(pixels, pre),
            image_id=np.array([int(im["id"]) for im in images], np.int64),
            orig_hw=np.array([g.orig_hw for g in geos], np.int64), ratio=np.array([g.ratio for g in geos], np.float64),
            pad=np.array([g.pad for g in geos], np.float64),
            gt_image=np.array([index[int(a["image_id"])] for a in mine], np.int64), gt_bbox=bbox,
            gt_category=np.array([int(a["category_id"]) for a in mine], np.int64),
            gt_iscrowd=np.array([int(a.get("iscrowd", 0)) for a in mine], np.int64),
            gt_area=np.array([float(a.get("area", b[2] * b[3])) for a, b in zip(mine, bbox, strict=True)], np.float64),
            category_ids=np.array(category_ids, np.int64), layout=np.array([pre.layout]), prep_ms=np.array([ms]),
        )  # fmt: skip
        return {"images": len(images), "annotations": len(mine), "prep_ms": ms}

    directory, _, _ = cache.get_or_build("evalsets", key, build)
    return directory / FILE


def prepare_masks(src: MasksEval, shape: tuple[int, ...], cache: ArtifactCache) -> Path:
    """``eval: {images: DIR, masks: DIR}`` as an npz: x and y (label masks at the input's size)."""
    pre = src.preprocess
    h, w, c = input_hw(shape, pre.layout)
    _check_channels(c, pre, shape)
    masks = {p.stem: p for p in _images(Path(src.masks))}
    paths = [p for p in _images(Path(src.images)) if p.stem in masks]
    paths = paths[: src.max_images] if src.max_images else paths
    if not paths:
        raise ConfigError(f"no image in {src.images} has a mask of the same name in {src.masks}", field="eval.masks")
    mask_paths = [masks[p.stem] for p in paths]
    key = {"v": VERSION, "kind": "masks", "images": _digest(paths, Path(src.images)),
           "masks": _digest(mask_paths, Path(src.masks)), "preprocess": pre.model_dump(mode="json"), "shape": list(shape)}

    def build(out: Path) -> dict[str, Any]:
        pixels, _, ms = _pixels(paths, pre, (h, w))
        y = np.stack([load_mask(p, pre, (h, w)) for p in mask_paths])
        np.savez(out / FILE, x=to_input(pixels, pre), y=y, layout=np.array([pre.layout]), prep_ms=np.array([ms]))
        return {"images": len(paths), "prep_ms": ms}

    directory, _, _ = cache.get_or_build("evalsets", key, build)
    return directory / FILE


def prepare_images(src: ImagesData, shape: tuple[int, ...], cache: ArtifactCache) -> Path:
    """``{images: DIR}`` as an npz of ``x`` alone (unlabelled: calibration, distillation)."""
    pre = src.preprocess
    h, w, c = input_hw(shape, pre.layout)
    _check_channels(c, pre, shape)
    root = Path(src.images)
    paths = _images(root)
    paths = paths[: src.max_images] if src.max_images else paths
    if not paths:
        raise ConfigError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)})", field="images")
    key = {"v": VERSION, "kind": "images", "files": _digest(paths, root), "preprocess": pre.model_dump(mode="json"),
           "shape": list(shape)}

    def build(out: Path) -> dict[str, Any]:
        pixels, _, ms = _pixels(paths, pre, (h, w))
        np.savez(out / FILE, x=to_input(pixels, pre), layout=np.array([pre.layout]), prep_ms=np.array([ms]))
        return {"images": len(paths), "prep_ms": ms}

    directory, _, _ = cache.get_or_build("evalsets", key, build)
    return directory / FILE


def prepare_data(src: Any, shape: tuple[int, ...], cache: ArtifactCache) -> Path:
    """A ``calib:`` or ``train:`` source as an npz: the user's own file, or one prepared from
    images (``x``, and ``y`` class labels from an ImageFolder tree)."""
    from harness.config.suite import ImageFolderEval, ImagesData

    if isinstance(src, ImageFolderEval):
        return prepare_imagefolder(src, shape, cache)
    if isinstance(src, ImagesData):
        return prepare_images(src, shape, cache)
    return Path(src)

