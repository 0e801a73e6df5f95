"""A detector through the real CLI: a tiny torch model exported with a YOLOv8-style head, a
COCO folder prepared once into an npz, boxes decoded on the board (the agent zipapp over the
local transport), COCO mAP computed on the coordinator and stored, the report's fronts on mAP."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
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
