"""A task on the wire from the coordinator's side: ``make_spec`` carries the suite's task to the
board, and the result's predictions come back checked (``harness.coordinator.protocol``)."""

from __future__ import annotations

import json

import numpy as np

from devices.agent.spec import Artifact, parse_spec
from devices.agent.tasks.pack import pack, unpack
from harness.config.suite import DetectionTask
from harness.coordinator.protocol import encode_spec, job_output, make_spec, parse_events
from harness.records import Job

RESULT = {
    "event": "result", "job_id": "j",
    "latency": {"n": 3, "p50_ms": 2.0, "p90_ms": 3.0, "p95_ms": 3.0, "p99_ms": 3.0, "mean_ms": 2.0, "std_ms": 1.0,
                "cv": 0.5, "min_ms": 1.0, "max_ms": 3.0, "throughput_ips": 500.0, "window_s": 0.006,
                "p50_ci_ms": [1.0, 3.0]},
    "samples_ns": [1000000, 2000000, 3000000], "peak_rss_mb": 100.0, "accuracy": None, "eval_n": 4, "precision": "f32",
}  # fmt: skip
TASK = {"kind": "detection", "decode": "yolov8", "raw": False, "n": 4, "batch": 1, "pre_ms": 0.01, "infer_ms": 2.0,
        "post_ms": 0.3, "arrays": pack({"scores": np.float32([0.5])})}


def test_the_suites_task_reaches_the_board_as_typed_settings() -> None:
    task = DetectionTask(kind="detection", decode="ssd", conf=0.2, iou=0.45, max_det=50, box_format="yxyx",
                         background=True).to_wire("nhwc")
    job = Job("m", "fp32", "local", "onnxruntime")
    text = encode_spec(make_spec(job, "j1", Artifact("/c/a.onnx"), (1, 300, 300, 3), "/c/ev.npz", task=task))
    raw = json.loads(text)
    assert raw["protocol"] == 3 and raw["eval"]["path"] == "/c/ev.npz"
    assert raw["eval"]["task"]["decode"] == "ssd" and raw["eval"]["task"]["layout"] == "nhwc"
    parsed = parse_spec(raw).eval
    assert parsed is not None and parsed.task == task and parsed.task.background and parsed.task.max_det == 50
    none = json.loads(encode_spec(make_spec(job, "j1", Artifact("/c/a.onnx"), (1, 3, 8, 8), "/c/ev.npz")))
    assert none["protocol"] == 1 and "task" not in none["eval"]


def _output(task: object) -> str:
    return "\n".join(json.dumps(e) for e in ({**RESULT, "task": task}, {"event": "exit", "code": 0})) + "\n"


def test_the_boards_predictions_are_kept_for_scoring() -> None:
    result = job_output(parse_events(_output(TASK)), "")
    assert result.status == "ok" and result.metrics["eval_n"] == 4
    kept = result.details["task_output"]
    assert kept["kind"] == "detection" and unpack(kept["arrays"])["scores"].tolist() == [0.5]


def test_malformed_predictions_fail_the_job_naming_the_field() -> None:
    for bad, field in ((dict(TASK, n="4"), "result.task.n must be int"), ([1, 2], "result.task must be an object"),
                       (dict(TASK, post_ms=float("inf")), "result.task.post_ms must be a finite number"),
                       ({k: v for k, v in TASK.items() if k != "arrays"}, "result.task.arrays must be str")):
        result = job_output(parse_events(_output(bad).replace("Infinity", "1e999")), "")
        assert result.status == "failed" and field in (result.error or ""), (field, result.error)
