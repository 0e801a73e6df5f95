"""A job's result scored: the board's predictions (``task_output``) in, task metrics out.

The board sends its predictions in the result event (``devices.agent.tasks.evaluate``);
``protocol.result_from_events`` keeps them as ``details["task_output"]``, and
``DeviceRunner`` calls :func:`score_task` with the job's ``TaskPlan`` and the eval npz on
this machine. The predictions are dropped after scoring: the store keeps the metrics
(``details["task"]``, read back as columns: ``Metric.details``), not a set's detections.
A metric that cannot be computed fails the job with the reason; its latency is kept.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from devices.agent.accuracy import npz_array_shape
from devices.agent.tasks.evaluate import input_hw
from devices.agent.tasks.pack import unpack
from harness.records import JobResult, one_line
from harness.tasks import metrics
from harness.tasks.plan import TaskPlan

# The headline metric of each kind: the quality axis of the fronts and the gate's.
HEADLINE = {"classification": "top1", "detection": "map_50_95", "segmentation": "miou"}


def score_task(result: JobResult, plan: TaskPlan | None, eval_path: Path | None) -> JobResult:
    """``result`` with its task metrics in ``details["task"]`` (or failed, saying why)."""
    out = result.details.pop("task_output", None)
    if plan is None or result.status != "ok":
        return result
    try:
        if out is None:
            raise ValueError("the board sent no predictions (an agent before protocol 3?)")
        if eval_path is None:
            raise ValueError("the job has no eval set")
        result.details["task"] = task_values(plan, out, Path(eval_path))
    except Exception as exc:  # noqa: BLE001 - a user's decoder or metric may raise anything
        reason = one_line(f"task metric ({plan.kind}) failed: {type(exc).__name__}: {exc}")
        return JobResult("failed", reason, metrics=result.metrics, samples_ns=result.samples_ns,
                         variant=result.variant, facts=result.facts, details=result.details,
                         attempts=result.attempts, repeats=result.repeats)
    return result


def _eval_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the eval npz but the inputs (the ground truth and the geometry)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k != "x"}


def task_values(plan: TaskPlan, out: dict[str, Any], eval_path: Path) -> dict[str, Any]:
    """What ``details["task"]`` keeps: the metrics, the headline (``metric``, ``quality``),
    and the per-image times of pre-processing, inference and post-processing."""
    arrays = unpack(out["arrays"])
    data = _eval_arrays(eval_path)
    n = int(out["n"])
    values: dict[str, Any] = {"kind": plan.kind, "n": n, "decode": out.get("decode")}
    for key in ("pre_ms", "infer_ms", "post_ms"):
        values[key] = out.get(key)
    if "prep_ms" in data:
        values["prep_ms"] = float(data["prep_ms"].reshape(-1)[0])
    if plan.kind == "classification":
        if "y" not in data:
            raise ValueError(f"{eval_path.name} has no labels y")
        found = metrics.classification(arrays["topk"], data["y"])
        values["top_k"] = int(arrays["topk"].shape[1])
    elif plan.kind == "detection":
        dets = arrays
        if plan.decoder:
            t0 = time.perf_counter()
            dets = _user_decode(plan, arrays, eval_path, n)
            values["decode"] = plan.decoder
            values["post_ms"] = (time.perf_counter() - t0) * 1e3 / max(n, 1)  # decoded here, not on the board
        found = metrics.detection(dets, data, n)
        values["detections"] = int(len(dets["scores"]))
    elif plan.kind == "segmentation":
        found = metrics.segmentation(arrays["confusion"])
        values["classes"] = int(arrays["confusion"].shape[0])
    else:
        assert plan.metric is not None
        outputs = [arrays[f"out_{k}"] for k in range(len(arrays))]
        labels = data["y"][:n] if "y" in data else None
        custom = metrics.custom(plan.metric, outputs, labels)
        name = plan.name or "custom"
        found = {name: next(iter(custom.values()))}
        values["custom"] = custom
        values["metric"], values["quality"] = name, found[name]
    values.update(found)
    if plan.kind != "custom":
        values["metric"] = HEADLINE[plan.kind]
        values["quality"] = found[HEADLINE[plan.kind]]
    return values


def _user_decode(plan: TaskPlan, arrays: dict[str, np.ndarray], eval_path: Path, n: int) -> dict[str, np.ndarray]:
    """Raw outputs through the user's ``decode(outputs, input_hw)``: one (boxes x1, y1, x2, y2
    in input pixels, scores, classes) per image."""
    from harness.zoo.registry import import_ref

    outputs = [arrays[f"out_{k}"] for k in range(len(arrays))]
    hw = input_hw(npz_array_shape(str(eval_path), "x"), plan.settings.layout)
    per_image = list(import_ref(plan.decoder)(outputs, hw))  # type: ignore[arg-type]
    if len(per_image) != n:
        raise ValueError(f"decoder {plan.decoder} returned {len(per_image)} images' detections for {n} images")
    boxes, scores, classes, image = [], [], [], []
    for i, (b, s, c) in enumerate(per_image):
        b = np.asarray(b, np.float32).reshape(-1, 4)
        boxes.append(b)
        scores.append(np.asarray(s, np.float32).reshape(-1))
        classes.append(np.asarray(c, np.int64).reshape(-1))
        image.append(np.full(len(b), i, np.int64))
        if not len(b) == len(scores[-1]) == len(classes[-1]):
            raise ValueError(f"decoder {plan.decoder}: image {i} has {len(b)} boxes, {len(scores[-1])} scores and "
                             f"{len(classes[-1])} classes")
    cat = (lambda parts, empty: np.concatenate(parts) if parts else empty)  # noqa: E731
    return {"boxes": cat(boxes, np.zeros((0, 4), np.float32)), "scores": cat(scores, np.zeros(0, np.float32)),
            "classes": cat(classes, np.zeros(0, np.int64)), "image": cat(image, np.zeros(0, np.int64))}
