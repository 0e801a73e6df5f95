"""Task metrics on the coordinator (``harness.tasks.metrics`` and ``score``): COCO mAP on a
synthetic detection set with known boxes, mIoU on known masks, top-k, a custom metric, and a
job's result scored from what the board sent."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

from devices.agent.spec import TaskSettings
from devices.agent.tasks.pack import pack
from harness.records import JobResult
from harness.tasks import metrics
from harness.tasks.plan import TaskPlan
from harness.tasks.score import score_task

# Four images of 200 x 100 (w x h), letterboxed into a 128 x 128 input: ratio 0.64, padded
# 32 rows above. Ground truth in original pixels (x, y, w, h), two categories (ids 3 and 7).
GT = [  # (image, x, y, w, h, category)
    (0, 10, 10, 50, 40, 3), (0, 120, 30, 60, 50, 7),
    (1, 20, 20, 80, 60, 3),
    (2, 100, 5, 40, 90, 7), (2, 30, 50, 30, 30, 7),
    (3, 0, 0, 200, 100, 3),
]  # fmt: skip
RATIO, PAD = 0.64, 32.0


def detection_set() -> dict[str, np.ndarray]:
    n = 4
    gt = np.array(GT, dtype=np.float64)
    return {
        "image_id": np.array([11, 12, 13, 14], np.int64), "orig_hw": np.array([[100, 200]] * n, np.int64),
        "ratio": np.array([[RATIO, RATIO]] * n), "pad": np.array([[PAD, 0.0]] * n),
        "gt_image": gt[:, 0].astype(np.int64), "gt_bbox": gt[:, 1:5], "gt_category": gt[:, 5].astype(np.int64),
        "gt_iscrowd": np.zeros(len(gt), np.int64), "gt_area": gt[:, 3] * gt[:, 4],
        "category_ids": np.array([3, 7], np.int64),
    }  # fmt: skip


def board_detections(shift_x: float = 0.0) -> dict[str, np.ndarray]:
    """The ground truth as the board would send it: x1, y1, x2, y2 in input pixels, class
    indices; ``shift_x`` moves every box right by that many original pixels."""
    gt = np.array(GT, dtype=np.float64)
    x1, y1 = gt[:, 1] + shift_x, gt[:, 2]
    boxes = np.stack([x1 * RATIO, y1 * RATIO + PAD, (x1 + gt[:, 3]) * RATIO, (y1 + gt[:, 4]) * RATIO + PAD], 1)
    return {"boxes": boxes.astype(np.float32), "scores": np.linspace(0.9, 0.5, len(gt)).astype(np.float32),
            "classes": (gt[:, 5] == 7).astype(np.int64), "image": gt[:, 0].astype(np.int64)}


def reference_map(shift_x: float) -> tuple[float, float]:
    """pycocotools on its own, from plain dicts: the numbers the harness must reproduce."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = [11, 12, 13, 14]
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "width": 200, "height": 100} for i in ids],
        "annotations": [{"id": k + 1, "image_id": ids[img], "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                         "category_id": cat} for k, (img, x, y, w, h, cat) in enumerate(GT)],
        "categories": [{"id": 3}, {"id": 7}],
    }  # fmt: skip
    scores = np.linspace(0.9, 0.5, len(GT))
    dets = []
    for (img, x, y, w, h, cat), score in zip(GT, scores, strict=True):
        x1, x2 = min(max(x + shift_x, 0), 200), min(max(x + shift_x + w, 0), 200)
        dets.append({"image_id": ids[img], "bbox": [x1, y, x2 - x1, h], "score": float(score), "category_id": cat})
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def test_perfect_detections_score_one() -> None:
    got = metrics.detection(board_detections(), detection_set(), 4)
    assert got == {"map_50_95": pytest.approx(1.0), "map_50": pytest.approx(1.0)}


@pytest.mark.parametrize("shift", [4.0, 9.0, 25.0])
def test_a_known_shift_scores_exactly_what_pycocotools_computes(shift: float) -> None:
    got = metrics.detection(board_detections(shift), detection_set(), 4)
    want = reference_map(shift)
    assert got["map_50_95"] == pytest.approx(want[0], abs=1e-9) and got["map_50"] == pytest.approx(want[1], abs=1e-9)
    assert 0 < got["map_50_95"] < 1  # the shift costs something, and is not all-or-nothing


def test_detections_outside_the_evaluated_images_or_classes_do_not_count() -> None:
    data = detection_set()
    dets = board_detections()
    only_two = metrics.detection(dets, data, 2)  # the board evaluated the first two images only
    assert only_two["map_50_95"] == pytest.approx(1.0)
    extra = {k: np.concatenate([v, v[:1]]) for k, v in dets.items()}
    extra["classes"][-1] = 5  # a class the model has but the eval set maps to no category
    assert metrics.detection(extra, data, 4)["map_50_95"] == pytest.approx(1.0)
    none = {k: v[:0] for k, v in dets.items()}
    assert metrics.detection(none, data, 4) == {"map_50_95": 0.0, "map_50": 0.0}


def test_boxes_map_back_through_the_letterbox() -> None:
    data = detection_set()
    back = metrics.to_original(board_detections()["boxes"], np.zeros(len(GT), np.int64), data)
    np.testing.assert_allclose(back, np.array(GT, np.float64)[:, 1:5], atol=1e-4)


def test_miou_and_pixel_accuracy_of_known_masks() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    preds = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0])
    cm = np.zeros((3, 3), np.int64)
    np.add.at(cm, (labels, preds), 1)
    got = metrics.segmentation(cm)
    # IoU per class: 0: 3 / (4 + 4 - 3) = 0.6; 1: 2 / (3 + 3 - 2) = 0.5; 2: 2 / (3 + 3 - 2) = 0.5
    assert got["miou"] == pytest.approx((0.6 + 0.5 + 0.5) / 3) and got["pixel_acc"] == pytest.approx(0.7)
    absent = np.zeros((4, 4), np.int64)
    absent[:3, :3] = cm  # a class nobody labels or predicts is not averaged in
    assert metrics.segmentation(absent)["miou"] == pytest.approx(got["miou"])
    assert metrics.segmentation(np.zeros((2, 2))) == {"miou": None, "pixel_acc": None}


def test_top1_and_top5() -> None:
    topk = np.array([[3, 1, 4, 0, 2], [0, 1, 2, 3, 4], [9, 8, 7, 6, 5], [1, 2, 3, 4, 5]])
    got = metrics.classification(topk, np.array([3, 4, 0, 1, 99]))  # labels beyond the evaluated rows are ignored
    assert got == {"top1": 0.5, "top5": 0.75}


def custom_metric(outputs: list[np.ndarray], labels: np.ndarray | None) -> dict[str, float]:
    assert labels is not None
    return {"mae": float(np.abs(outputs[0].reshape(-1) - labels).mean()), "n": float(len(labels))}


def test_a_custom_metric_is_imported_and_called_over_the_raw_outputs() -> None:
    got = metrics.custom(f"{__name__}:custom_metric", [np.array([[1.0], [2.0], [4.0]])], np.array([1.0, 1.0, 1.0]))
    assert got == {"mae": pytest.approx(4 / 3), "n": 3.0}


# -- a job's result scored --------------------------------------------------------------------


def _result(task: dict) -> JobResult:
    return JobResult("ok", metrics={"p50_ms": 1.0}, details={"task_output": task, "runtime": {}})


def _task(kind: str, arrays: dict[str, np.ndarray], n: int, **kw: object) -> dict:
    return {"kind": kind, "decode": kw.get("decode"), "raw": bool(kw.get("raw", False)), "n": n, "batch": 1,
            "pre_ms": 0.01, "infer_ms": 1.5, "post_ms": 0.25, "arrays": pack(arrays)}


def test_a_detection_job_is_scored_and_its_predictions_dropped(tmp_path: Path) -> None:
    path = tmp_path / "coco.npz"
    np.savez(path, x=np.zeros((4, 3, 128, 128), np.float32), prep_ms=np.array([2.5]), **detection_set())
    plan = TaskPlan("detection", TaskSettings(kind="detection", decode="yolov8"), path)
    result = score_task(_result(_task("detection", board_detections(9.0), 4, decode="yolov8")), plan, path)
    assert result.status == "ok" and "task_output" not in result.details
    task = result.details["task"]
    assert task["metric"] == "map_50_95" and task["quality"] == task["map_50_95"] == pytest.approx(reference_map(9.0)[0])
    assert task["map_50"] == pytest.approx(reference_map(9.0)[1]) and task["detections"] == len(GT)
    assert (task["pre_ms"], task["infer_ms"], task["post_ms"], task["prep_ms"]) == (0.01, 1.5, 0.25, 2.5)


def user_decoder(outputs: list[np.ndarray], input_hw: tuple[int, int]) -> list:
    """Raw outputs [N, K, 6] rows (x1, y1, x2, y2, score, class) -> per image detections."""
    assert input_hw == (128, 128)
    return [(o[:, :4], o[:, 4], o[:, 5].astype(int)) for o in outputs[0]]


def test_a_user_decoder_runs_here_over_the_raw_outputs(tmp_path: Path) -> None:
    path = tmp_path / "coco.npz"
    np.savez(path, x=np.zeros((4, 3, 128, 128), np.float32), **detection_set())
    dets = board_detections()
    raw = np.zeros((4, 2, 6), np.float32)  # two rows per image; unused rows score 0 on a class without a category
    raw[:, :, 5] = 9
    for i in range(4):
        mine = np.flatnonzero(dets["image"] == i)
        raw[i, : len(mine), :4] = dets["boxes"][mine]
        raw[i, : len(mine), 4] = dets["scores"][mine]
        raw[i, : len(mine), 5] = dets["classes"][mine]
    plan = TaskPlan("detection", TaskSettings(kind="detection", raw=True), path, decoder=f"{__name__}:user_decoder")
    result = score_task(_result(_task("detection", {"out_0": raw}, 4, raw=True)), plan, path)
    assert result.status == "ok", result.error
    assert result.details["task"]["map_50_95"] == pytest.approx(1.0)
    assert result.details["task"]["decode"] == plan.decoder


def test_segmentation_classification_and_custom_jobs_are_scored(tmp_path: Path) -> None:
    seg = tmp_path / "seg.npz"
    np.savez(seg, x=np.zeros((1, 3, 2, 2), np.float32), y=np.zeros((1, 2, 2), np.uint8))
    cm = np.array([[3, 1], [0, 4]])
    plan = TaskPlan("segmentation", TaskSettings(kind="segmentation"), seg)
    task = score_task(_result(_task("segmentation", {"confusion": cm}, 1)), plan, seg).details["task"]
    assert (task["metric"], task["quality"]) == ("miou", pytest.approx((3 / 4 + 4 / 5) / 2))
    cls = tmp_path / "cls.npz"
    np.savez(cls, x=np.zeros((4, 1, 8, 8), np.float32), y=np.array([3, 4, 0, 1]))
    topk = np.array([[3, 1, 4, 0, 2], [0, 1, 2, 3, 4], [9, 8, 7, 6, 5], [1, 2, 3, 4, 5]])
    plan = TaskPlan("classification", TaskSettings(), cls)
    task = score_task(_result(_task("classification", {"topk": topk}, 4)), plan, cls).details["task"]
    assert (task["top1"], task["top5"], task["quality"], task["top_k"]) == (0.5, 0.75, 0.5, 5)
    plan = TaskPlan("custom", TaskSettings(kind="custom", raw=True), cls, metric=f"{__name__}:custom_metric",
                    name="mae")
    outs = {"out_0": np.array([[3.0], [4.0], [0.0], [2.0]])}
    task = score_task(_result(_task("custom", outs, 4, raw=True)), plan, cls).details["task"]
    assert (task["metric"], task["quality"]) == ("mae", pytest.approx(0.25)) and task["custom"]["n"] == 4.0


def broken_metric(outputs: list[np.ndarray], labels: np.ndarray | None) -> float:
    raise RuntimeError("labels do not match")


def test_a_metric_that_fails_fails_the_job_and_keeps_its_latency(tmp_path: Path) -> None:
    cls = tmp_path / "cls.npz"
    np.savez(cls, x=np.zeros((1, 1, 8, 8), np.float32), y=np.array([0]))
    plan = TaskPlan("custom", TaskSettings(kind="custom", raw=True), cls, metric=f"{__name__}:broken_metric")
    result = score_task(_result(_task("custom", {"out_0": np.zeros((1, 2))}, 1, raw=True)), plan, cls)
    assert result.status == "failed" and result.metrics["p50_ms"] == 1.0
    assert result.error == "task metric (custom) failed: RuntimeError: labels do not match"
    missing = score_task(JobResult("ok", metrics={"p50_ms": 1.0}), plan, cls)
    assert missing.status == "failed" and "the board sent no predictions" in (missing.error or "")
    untouched = score_task(_result(_task("custom", {}, 1)), None, None)
    assert untouched.status == "ok" and "task_output" not in untouched.details  # no task: predictions dropped
