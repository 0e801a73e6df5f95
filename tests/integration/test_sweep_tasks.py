"""A detector through the real CLI: a tiny torch model exported with a YOLOv8-style head, a
COCO folder prepared once into an npz, boxes decoded on the board (the agent zipapp over the
local transport), COCO mAP computed on the coordinator and stored, the report's fronts on mAP."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import harness.store
from harness.cli import main

pytestmark = pytest.mark.usefixtures("ray_local")

SIZE = 64
# (file, colour, x, y, w, h): red squares are category 1 (model class 0), green ones category 2.
OBJECTS = [("a.png", "red", 8, 10, 16, 16), ("b.png", "green", 30, 20, 20, 12), ("c.png", "red", 40, 40, 18, 22),
           ("d.png", "green", 2, 44, 24, 14)]


def write_detector(path: Path) -> None:
    """Finds the one coloured rectangle on black: its centre is the mass centre of the bright
    pixels, its width and height come from their variance (a uniform run of w pixels has
    variance (w^2 - 1) / 12), its class scores from the red and green means. A second anchor,
    one pixel to the right at a lower score, is what NMS must suppress."""
    import torch
    from torch import nn

    class Detector(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = torch.relu(x.max(dim=1).values - 0.6) / 0.4  # [1, H, W]: 1 on the rectangle, 0 elsewhere
            h, w = x.shape[2], x.shape[3]
            ys = torch.arange(h, dtype=x.dtype).view(1, h, 1) + 0.5
            xs = torch.arange(w, dtype=x.dtype).view(1, 1, w) + 0.5
            s = m.sum(dim=(1, 2)) + 1e-6
            cx, cy = (m * xs).sum(dim=(1, 2)) / s, (m * ys).sum(dim=(1, 2)) / s
            vx = (m * (xs - cx.view(-1, 1, 1)) ** 2).sum(dim=(1, 2)) / s
            vy = (m * (ys - cy.view(-1, 1, 1)) ** 2).sum(dim=(1, 2)) / s
            bw, bh = torch.sqrt(12 * vx + 1), torch.sqrt(12 * vy + 1)
            red, green = (x[:, 0] * m).sum(dim=(1, 2)) / s, (x[:, 1] * m).sum(dim=(1, 2)) / s
            best = torch.stack([cx, cy, bw, bh, 0.9 * red, 0.9 * green], dim=1)
            shifted = torch.stack([cx + 1, cy, bw, bh, 0.5 * red, 0.5 * green], dim=1)
            return torch.stack([best, shifted], dim=2)  # [1, 4 + 2, 2]: YOLOv8's layout

    torch.onnx.export(Detector().eval(), (torch.zeros(1, 3, SIZE, SIZE),), str(path), opset_version=17,
                      input_names=["images"], output_names=["output0"], dynamo=False)


def write_coco(root: Path) -> None:
    from PIL import Image

    colours = {"red": (255, 0, 0), "green": (0, 255, 0)}
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i, (name, colour, x, y, w, h) in enumerate(OBJECTS, start=1):
        im = Image.new("RGB", (SIZE, SIZE))
        im.paste(Image.new("RGB", (w, h), colours[colour]), (x, y))
        im.save(root / "images" / name)
        images.append({"id": i, "file_name": name, "width": SIZE, "height": SIZE})
        anns.append({"id": 100 + i, "image_id": i, "category_id": 1 if colour == "red" else 2, "bbox": [x, y, w, h],
                     "area": w * h, "iscrowd": 0})
    categories = [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}]
    (root / "instances.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))


def test_a_detector_sweep_stores_coco_map(tmp_path: Path, artifact_cache) -> None:  # noqa: ANN001
    write_detector(tmp_path / "det.onnx")
    write_coco(tmp_path / "coco")
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: detector
        models:
          - name: squares
            onnx: det.onnx
            input_shape: [1, 3, {SIZE}, {SIZE}]
            eval: {{coco: coco/instances.json, images: coco/images}}
            task: {{kind: detection, decode: yolov8}}
        variants: [fp32]
        runtimes: [onnxruntime]
        measure: {{warmup_iters: 5, warmup_s: 0.05, min_iters: 30, min_s: 0.2, timeout_s: 120, quiet: null}}
        """).lstrip())
    db, report = tmp_path / "h.db", tmp_path / "report.html"
    cache_root = artifact_cache.root.parent
    code = main(["sweep", str(suite), "--store", str(db), "--cache-dir", str(cache_root), "--report", str(report),
                 "-q"])
    assert code == 0
    with harness.store.open(db) as st:
        df = st.results()
    row = df.iloc[0]
    assert row.status == "ok" and row.eval_n == len(OBJECTS)
    assert row.quality_metric == "map_50_95" and row.quality == row.map_50_95 == pytest.approx(1.0)
    assert row.map_50 == pytest.approx(1.0) and np.isnan(row.accuracy)
    assert row.post_ms > 0 and row.eval_infer_ms > 0 and row.pre_ms > 0 and row.prep_ms > 0
    with harness.store.open(db) as st:
        details = json.loads(st._conn.execute("SELECT details_json FROM results").fetchone()[0])
    assert "task_output" not in details and details["task"]["detections"] == len(OBJECTS)  # NMS kept one each
    assert "mAP@[.5:.95] (%)" in report.read_text()
    prepared = list((cache_root / "artifacts" / "evalsets").glob("*/eval.npz"))
    assert len(prepared) == 1  # prepared once, cached by content


def write_colour_nets(root: Path) -> None:
    """A classifier (blue, red, green-ish by channel means) and a segmenter (red pixels: class 1),
    each behind a 1x1 convolution so that int8 has weights to quantize."""
    import torch
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1, bias=False)
            with torch.no_grad():
                self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = self.conv(x).mean(dim=(2, 3))
            r, g, b = m[:, 0], m[:, 1], m[:, 2]
            return torch.stack([b - r, r - b, g - (r + b) / 2], dim=1) * 10  # classes: blue, red (sorted folders), green

    segmenter = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        segmenter.weight.copy_(torch.tensor([[-1.0, 0, 0], [1.0, 0, 0]]).view(2, 3, 1, 1))
        segmenter.bias.copy_(torch.tensor([0.5, -0.5]))
    for net, name in ((Classifier(), "cls.onnx"), (segmenter, "seg.onnx")):
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 32, 32),), str(root / name), opset_version=17,
                          input_names=["images"], output_names=["out"], dynamo=False)


def write_colour_files(root: Path) -> None:
    """An ImageFolder tree (blue/, red/), unlabelled calibration images, and images with masks."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, channel in (("blue", 2), ("red", 0)):
        (root / "val" / cls).mkdir(parents=True)
        for i in range(3):
            px = rng.integers(0, 60, (40, 48, 3)).astype(np.uint8)
            px[..., channel] = rng.integers(180, 255, (40, 48))
            Image.fromarray(px, "RGB").save(root / "val" / cls / f"{i}.png")
    (root / "calib").mkdir()
    for i in range(8):  # like the eval images, other pixels
        px = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
        px[..., 2 * (i % 2)] = rng.integers(180, 255, (32, 32))
        Image.fromarray(px, "RGB").save(root / "calib" / f"{i}.png")
    (root / "seg" / "images").mkdir(parents=True)
    (root / "seg" / "masks").mkdir()
    for i, (x, y, w, h) in enumerate([(4, 4, 10, 12), (16, 8, 12, 20), (2, 20, 24, 8)]):
        im = np.zeros((32, 32, 3), np.uint8)
        im[y : y + h, x : x + w, 0] = 255
        mask = np.zeros((32, 32), np.uint8)
        mask[y : y + h, x : x + w] = 1
        Image.fromarray(im, "RGB").save(root / "seg" / "images" / f"{i}.png")
        Image.fromarray(mask, "L").save(root / "seg" / "masks" / f"{i}.png")


def test_classification_and_segmentation_sweeps_read_image_folders(tmp_path: Path, artifact_cache) -> None:  # noqa: ANN001
    """ImageFolder top-1, masks mIoU, and int8 calibrated on the model's calib: images versus on
    seeded synthetic inputs (marked 'synthetic' in the store and the report)."""
    write_colour_nets(tmp_path)
    write_colour_files(tmp_path)
    suite = tmp_path / "suite.yaml"
    suite.write_text(textwrap.dedent("""
        name: colours
        models:
          - name: colours
            onnx: cls.onnx
            input_shape: [1, 3, 32, 32]
            eval: {imagefolder: val}
            task: {kind: classification}
            calib: {images: calib}
          - name: colours-nocalib
            onnx: cls.onnx
            input_shape: [1, 3, 32, 32]
            eval: {imagefolder: val}
          - name: regions
            onnx: seg.onnx
            input_shape: [1, 3, 32, 32]
            eval: {images: seg/images, masks: seg/masks}
            task: {kind: segmentation}
        variants: [fp32, int8-static]
        runtimes: [onnxruntime]
        measure: {warmup_iters: 5, warmup_s: 0.05, min_iters: 30, min_s: 0.2, timeout_s: 120, quiet: null}
        """).lstrip())
    db, report = tmp_path / "h.db", tmp_path / "report.html"
    code = main(["sweep", str(suite), "--store", str(db), "--cache-dir", str(artifact_cache.root.parent),
                 "--report", str(report), "-q"])
    assert code == 0
    with harness.store.open(db) as st:
        df = st.results().set_index(["model", "variant"])
    assert (df.status == "ok").all()
    cls = df.loc[("colours", "fp32")]
    assert cls.quality_metric == "top1" and cls.top1 == pytest.approx(1.0) and cls.eval_n == 6
    seg = df.loc[("regions", "fp32")]
    assert seg.quality_metric == "miou" and seg.miou == pytest.approx(1.0) and seg.eval_n == 3
    assert df.loc[("colours-nocalib", "fp32")].accuracy == pytest.approx(1.0)  # no task: top-1 of the first output
    # int8 calibrated on the calib: images is not marked; without them it is, saying how.
    assert pd.isna(df.loc[("colours", "int8-static")].synthetic)
    assert pd.isna(df.loc[("colours", "int8-static")].degraded)  # calibrated on images like the real ones
    note = df.loc[("colours-nocalib", "int8-static")].synthetic
    assert note.startswith("int8-static: calibrated on ") and "synthetic" in note
    assert df.loc[("colours", "int8-static")].variant_id != df.loc[("colours-nocalib", "int8-static")].variant_id
    page = report.read_text()
    assert 'class="badge synthetic"' in page and "mIoU (%)" in page
