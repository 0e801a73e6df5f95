"""Task predictions on the board (``devices/agent/tasks``): the decoders on hand-made head
tensors, class-wise NMS, top-k, segmentation confusion counts, the task on the wire, and a
real agent run that sends a detector's boxes back."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.errors import ArtifactIncompatible, ProtocolError
from devices.agent.spec import Artifact, EvalSet, JobSpec, ModelInput, TaskSettings, parse_spec, spec_to_json
from devices.agent.tasks import classification, segmentation
from devices.agent.tasks.boxes import box_iou
from devices.agent.tasks.nms import batched_nms, nms
from devices.agent.tasks.pack import pack, unpack
from devices.agent.tasks.registry import DECODERS

HW = (320, 320)


def v8_head(rows: list[tuple[float, ...]]) -> np.ndarray:
    """[1, 4 + C, N] from rows (cx, cy, w, h, score_0, ..., score_C-1), one per box."""
    return np.asarray(rows, dtype=np.float32).T[None]


def settings(**kw: object) -> TaskSettings:
    return TaskSettings(**{"kind": "detection", "decode": "yolov8", "conf": 0.25, "iou": 0.5, **kw})  # type: ignore[arg-type]


# -- YOLOv8 ---------------------------------------------------------------------------

HEAD = v8_head([
    (50, 50, 20, 20, 0.9, 0.0, 0.0),  # kept: best of class 0
    (52, 50, 20, 20, 0.8, 0.0, 0.0),  # IoU 0.82 with the first, same class: suppressed
    (50, 50, 20, 20, 0.0, 0.0, 0.6),  # same place, class 2: kept (class-wise NMS)
    (150, 150, 40, 40, 0.0, 0.7, 0.0),  # kept, class 1
    (300, 300, 10, 10, 0.1, 0.2, 0.1),  # below conf 0.25: dropped
])  # fmt: skip


def test_yolov8_decodes_thresholds_and_suppresses_within_a_class() -> None:
    boxes, scores, classes, image = DECODERS["yolov8"]([HEAD], settings(), HW)
    np.testing.assert_array_equal(scores, np.float32([0.9, 0.7, 0.6]))
    np.testing.assert_array_equal(classes, [0, 1, 2])
    np.testing.assert_array_equal(boxes, np.float32([[40, 40, 60, 60], [130, 130, 170, 170], [40, 40, 60, 60]]))
    np.testing.assert_array_equal(image, [0, 0, 0])


def test_yolov8_agnostic_multi_label_max_det_and_normalized_boxes() -> None:
    _, scores, classes, _ = DECODERS["yolov8"]([HEAD], settings(agnostic=True), HW)
    assert list(classes) == [0, 1]  # class 2's box lies under class 0's: suppressed across classes
    two = v8_head([(50, 50, 20, 20, 0.9, 0.5)])
    _, scores, classes, _ = DECODERS["yolov8"]([two], settings(multi_label=True), HW)
    assert list(classes) == [0, 1] and list(scores) == [np.float32(0.9), np.float32(0.5)]
    _, scores, _, _ = DECODERS["yolov8"]([HEAD], settings(max_det=2), HW)
    assert list(scores) == [np.float32(0.9), np.float32(0.7)]
    norm = v8_head([(0.5, 0.25, 0.1, 0.1, 0.9)])
    boxes, _, _, _ = DECODERS["yolov8"]([norm], settings(normalized=True), (200, 400))
    np.testing.assert_allclose(boxes, [[180, 40, 220, 60]])  # x by the width 400, y by the height 200


def test_yolov8_batch_indexes_images_and_clips_to_the_input() -> None:
    batch = np.concatenate([v8_head([(10, 10, 40, 40, 0.9)]), v8_head([(310, 160, 40, 20, 0.8)])])
    boxes, _, _, image = DECODERS["yolov8"]([batch], settings(), HW)
    np.testing.assert_array_equal(image, [0, 1])
    np.testing.assert_array_equal(boxes, np.float32([[0, 0, 30, 30], [290, 150, 320, 170]]))


def test_a_head_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ArtifactIncompatible, match="yolov8 decoder"):
        DECODERS["yolov8"]([np.zeros((1, 10))], settings(), HW)
    with pytest.raises(ArtifactIncompatible, match="ssd decoder"):
        DECODERS["ssd"]([np.zeros((1, 5, 4))], settings(decode="ssd"), HW)


# -- YOLOv5 ---------------------------------------------------------------------------


def test_yolov5_scores_are_objectness_times_class_probability() -> None:
    rows = np.float32([
        [100, 100, 50, 50, 0.9, 0.5, 1.0],  # class 1 at 0.9
        [100, 100, 50, 50, 0.5, 0.8, 0.1],  # class 0 at 0.4: the same place, another class: kept
        [102, 100, 50, 50, 0.8, 0.1, 0.9],  # class 1 at 0.72, IoU 0.92 with the first: suppressed
        [200, 200, 10, 10, 0.2, 1.0, 0.0],  # objectness 0.2 <= conf: dropped before scoring
    ])[None]  # fmt: skip
    boxes, scores, classes, _ = DECODERS["yolov5"]([rows], settings(decode="yolov5"), HW)
    np.testing.assert_allclose(scores, [0.9, 0.4], rtol=1e-6)
    np.testing.assert_array_equal(classes, [1, 0])
    np.testing.assert_array_equal(boxes, np.float32([[75, 75, 125, 125]] * 2))


# -- SSD -----------------------------------------------------------------------------


def test_ssd_reads_normalized_yxyx_boxes_with_a_background_column_in_either_order() -> None:
    boxes = np.float32([[[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.9, 0.9], [0.1, 0.2, 0.3, 0.41]]])  # y1, x1, y2, x2
    scores = np.float32([[[0.1, 0.9, 0.0], [0.2, 0.0, 0.75], [0.1, 0.85, 0.0]]])  # column 0: background
    s = settings(decode="ssd", box_format="yxyx", background=True)
    for outs in ([boxes, scores], [scores, boxes]):
        b, sc, c, _ = DECODERS["ssd"](outs, s, (100, 200))
        np.testing.assert_allclose(sc, [0.9, 0.75], rtol=1e-6)
        np.testing.assert_array_equal(c, [0, 1])  # background dropped: class k + 1 reported as k
        np.testing.assert_allclose(b, [[40, 10, 80, 30], [100, 50, 180, 90]], rtol=1e-6)
    pixels = settings(decode="ssd", normalized=False, box_format="cxcywh")
    b, _, c, _ = DECODERS["ssd"]([np.float32([[[10, 10, 4, 4]]]), np.float32([[[0.3, 0.6]]])], pixels, HW)
    np.testing.assert_array_equal(b, [[8, 8, 12, 12]])
    assert list(c) == [1]


# -- NMS -----------------------------------------------------------------------------


def _greedy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """The textbook greedy NMS, one box at a time, for comparison."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(box_iou(boxes[k], boxes[i:i + 1])[0] <= iou for k in kept):
            kept.append(i)
    return kept


def test_nms_matches_the_textbook_greedy_pass_on_random_boxes() -> None:
    rng = np.random.RandomState(3)
    for trial in range(20):
        xy = rng.uniform(0, 100, (60, 2))
        wh = rng.uniform(5, 40, (60, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.uniform(0, 1, 60).astype(np.float32)
        want = _greedy(boxes, scores, 0.45)
        assert list(nms(boxes, scores, 0.45, 1000)) == want
        assert list(nms(boxes, scores, 0.45, 5)) == want[:5]  # stopping at max_det cuts the same list


def test_batched_nms_never_lets_one_class_suppress_another() -> None:
    boxes = np.float32([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10], [500, 500, 510, 510]])
    scores = np.float32([0.9, 0.8, 0.7, 0.6])
    classes = np.int64([0, 1, 0, 1])
    assert list(batched_nms(boxes, scores, classes, 0.5, 100)) == [0, 1, 3]
    assert list(batched_nms(boxes, scores, classes, 0.5, 100, agnostic=True)) == [0, 3]
    assert len(batched_nms(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0), 0.5, 10)) == 0


# -- classification and segmentation ---------------------------------------------------


def test_top_k_is_best_first_and_capped_at_the_classes() -> None:
    logits = np.float32([[0.1, 0.5, 0.2, 0.9, 0.0, 0.3, 0.8], [1, 0, 0, 0, 0, 0, 0]])
    top = classification.top_k([logits], 5, 2)
    np.testing.assert_array_equal(top[0], [3, 6, 1, 5, 2])
    assert top[1, 0] == 0
    assert classification.top_k([logits], 50, 2).shape == (2, 7)


def test_confusion_counts_of_known_masks() -> None:
    masks = np.uint8([[[0, 0, 1], [1, 2, 255]]])  # one 2x3 mask; 255 is ignored
    scores = np.zeros((1, 3, 2, 3), np.float32)
    pred = np.int64([[0, 1, 1], [1, 1, 0]])
    for r, c in itertools.product(range(2), range(3)):
        scores[0, pred[r, c], r, c] = 1.0
    cm = segmentation.confusion([scores], masks, 255, "nchw")
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [0, 1, 0]])  # rows: label, columns: prediction
    nhwc = segmentation.confusion([scores.transpose(0, 2, 3, 1)], masks, 255, "nchw")
    np.testing.assert_array_equal(nhwc, cm)
    low = scores[:, :, :1, :1].repeat(2, axis=2).repeat(3, axis=3)  # a 1x1 map says class 0 everywhere
    np.testing.assert_array_equal(segmentation.confusion([scores[:, :, :1, :1]], masks, 255, "nchw"),
                                  segmentation.confusion([low], masks, 255, "nchw"))
    assert segmentation.add(np.ones((2, 2), np.int64), cm).tolist() == [[2, 2, 0], [1, 3, 0], [0, 1, 0]]


def test_arrays_survive_the_result_event_exactly() -> None:
    arrays = {"boxes": np.float32([[1.5, 2.25, 3, 4]]), "classes": np.int64([7])}
    back = unpack(json.loads(json.dumps({"a": pack(arrays)}))["a"])
    assert back["boxes"].dtype == np.float32 and back["boxes"].tolist() == [[1.5, 2.25, 3, 4]]
    assert back["classes"].tolist() == [7]


# -- the task on the wire ------------------------------------------------------------------


def _spec(task: TaskSettings | None) -> JobSpec:
    return JobSpec("j", "onnxruntime", Artifact("m.onnx"), ModelInput((1, 3, 8, 8)), eval=EvalSet("e.npz", task=task))


def test_the_task_round_trips_and_raises_the_protocol() -> None:
    task = TaskSettings(kind="detection", decode="ssd", conf=0.05, iou=0.6, max_det=100, agnostic=True,
                        normalized=False, box_format="yxyx", background=True, layout="nhwc")
    raw = json.loads(json.dumps(spec_to_json(_spec(task))))
    assert raw["protocol"] == 3 and raw["eval"]["task"]["box_format"] == "yxyx"
    assert parse_spec(raw) == _spec(task)
    plain = spec_to_json(_spec(None))
    assert plain["protocol"] == 1 and "task" not in plain["eval"]  # older agents read a job without a task
    assert parse_spec(plain).eval == EvalSet("e.npz")
    sparse = dict(raw, eval={"path": "e.npz", "task": {"kind": "classification"}})
    assert parse_spec(sparse).eval.task == TaskSettings()  # every key but kind defaults


@pytest.mark.parametrize(("task", "message"), [
    ({"kind": "ocr"}, "eval.task.kind must be one of"),
    ({"kind": "detection", "decode": "yolov9"}, "eval.task.decode must be one of ssd, yolov5, yolov8"),
    ({"kind": "detection"}, "eval.task.decode is what a detection task needs"),
    ({"kind": "detection", "decode": "yolov8", "raw": True}, "or else raw: true"),
    ({"kind": "custom"}, "raw must be true"),
    ({"kind": "classification", "raw": True}, "raw is for kinds custom and detection"),
    ({"kind": "detection", "decode": "yolov8", "iou": 0}, "iou must be in"),
    ({"kind": "detection", "decode": "yolov8", "conf": "0.1"}, "conf must be int/float"),
    ({"kind": "detection", "decode": "yolov8", "nms": 0.5}, "unknown spec key eval.task.nms"),
    ({"kind": "segmentation", "decode": "ssd"}, "decode is for kind detection"),
    ({"kind": "classification", "top_k": True}, "top_k must be int"),
])  # fmt: skip
def test_a_bad_task_names_its_key(task: dict, message: str) -> None:
    raw = spec_to_json(_spec(TaskSettings()))
    raw["eval"]["task"] = task
    with pytest.raises(ProtocolError, match=message):
        parse_spec(raw)


# -- a real agent: every output, decoded on the board ----------------------------------------


def write_two_output_detector(path: Path) -> np.ndarray:
    """An ONNX model whose outputs are a fixed YOLOv8 head [1, 7, 3] (plus 0 x the input, so it
    depends on it) and, second, the input's mean: run_all must return both."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    head = v8_head([(20, 20, 10, 10, 0.9, 0.1, 0.0), (21, 20, 10, 10, 0.8, 0.0, 0.0), (40, 40, 8, 8, 0.0, 0.0, 0.7)])
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["z"]),
             helper.make_node("Add", ["head", "z"], ["out"])]
    graph = helper.make_graph(
        nodes, "det", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 7, 3]),
         helper.make_tensor_value_info("mean", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(head, "head"), numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return head


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_run_all_returns_every_output_in_the_models_order(tmp_path: Path, runtime: str) -> None:
    from devices.agent.runtimes import get_runtime

    head = write_two_output_detector(tmp_path / "det.onnx")
    rt = get_runtime(runtime)({}, 1)
    rt.load(str(tmp_path / "det.onnx"))
    x = np.full((1, 3, 64, 64), 0.5, np.float32)
    outs = rt.run_all(x)
    assert len(outs) == 2
    np.testing.assert_allclose(outs[0], head, rtol=1e-6)
    np.testing.assert_allclose(outs[1], 0.5, rtol=1e-6)
    np.testing.assert_allclose(rt.run(x), head, rtol=1e-6)  # run keeps returning the first output
    rt.close()


def _measure(tmp_path: Path, task: dict, n: int = 5) -> list[dict]:
    from devices.agent.cli import main

    write_two_output_detector(tmp_path / "det.onnx")
    np.savez(tmp_path / "ev.npz", x=np.random.RandomState(0).rand(n, 3, 64, 64).astype(np.float32))
    spec = lib.make_spec(tmp_path / "det.onnx", protocol=3, input={"shape": [1, 3, 64, 64], "dtype": "float32"},
                         eval={"path": str(tmp_path / "ev.npz"), "task": task})
    out = io.StringIO()
    main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_agent_decodes_the_eval_set_with_the_timed_runtime(tmp_path: Path) -> None:
    events = _measure(tmp_path, {"kind": "detection", "decode": "yolov8", "conf": 0.25, "iou": 0.5})
    result = lib.by_event(events, "result")[0]
    task = result["task"]
    assert task["kind"] == "detection" and task["n"] == result["eval_n"] == 5 and task["batch"] == 1
    assert result["accuracy"] is None  # no top-1 for a detector
    for key in ("pre_ms", "infer_ms", "post_ms"):
        assert task[key] > 0, key  # each part of an image's time, apart from the timed window
    got = unpack(task["arrays"])
    np.testing.assert_array_equal(got["image"], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(got["classes"], [0, 2] * 5)
    np.testing.assert_array_equal(got["boxes"][:2], np.float32([[15, 15, 25, 25], [36, 36, 44, 44]]))


def test_raw_outputs_come_back_whole_or_are_refused_above_the_cap(tmp_path: Path) -> None:
    events = _measure(tmp_path, {"kind": "custom", "raw": True}, n=3)
    got = unpack(lib.by_event(events, "result")[0]["task"]["arrays"])
    assert got["out_0"].shape == (3, 7, 3) and got["out_1"].shape == (3,)
    events = _measure(tmp_path, {"kind": "custom", "raw": True, "max_raw_mb": 1e-5}, n=3)
    error = lib.by_event(events, "error")[0]
    assert error["kind"] == "ArtifactIncompatible" and "max_raw_mb" in error["message"]


def test_a_segmentation_set_needs_masks(tmp_path: Path) -> None:
    events = _measure(tmp_path, {"kind": "segmentation"})
    error = lib.by_event(events, "error")[0]
    assert error["kind"] == "ArtifactIncompatible" and "has no array 'y'" in error["message"]


def test_a_classification_task_sends_top_k_and_keeps_top1_accuracy(tmp_path: Path) -> None:
    from devices.agent.cli import main

    model = lib.write_classifier(tmp_path / "clf.onnx")
    ev = lib.make_eval_set(tmp_path / "ev.npz", n=41)  # batch 4: the last image is dropped
    spec = lib.make_spec(model, protocol=3, eval={"path": str(ev), "task": {"kind": "classification", "top_k": 3}})
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 0
    result = lib.by_event([json.loads(line) for line in out.getvalue().splitlines()], "result")[0]
    top = unpack(result["task"]["arrays"])["topk"]
    with np.load(ev) as f:
        y = f["y"][:40]
    assert top.shape == (40, 3) and result["eval_n"] == 40 and result["task"]["batch"] == 4
    assert (top[:, 0] == y).all() and result["accuracy"] == 1.0  # the labels are the model's own argmax


def test_a_segmentation_task_sums_confusion_counts_over_the_set(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from devices.agent.cli import main

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["scores"])], "seg",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "seg.onnx"))
    x = np.random.RandomState(1).rand(6, 3, 4, 4).astype(np.float32)
    y = x.argmax(axis=1).astype(np.uint8)  # the model's own classes ...
    y[0, 0, 0] = (y[0, 0, 0] + 1) % 3  # ... but one pixel labelled otherwise
    y[1, 1, 1] = 255  # and one ignored
    np.savez(tmp_path / "ev.npz", x=x, y=y)
    spec = lib.make_spec(tmp_path / "seg.onnx", protocol=3, input={"shape": [1, 3, 4, 4], "dtype": "float32"},
                         eval={"path": str(tmp_path / "ev.npz"), "task": {"kind": "segmentation"}})
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, spec))], out=out) == 0
    result = lib.by_event([json.loads(line) for line in out.getvalue().splitlines()], "result")[0]
    cm = unpack(result["task"]["arrays"])["confusion"]
    assert cm.shape == (3, 3) and cm.sum() == 6 * 16 - 1 and np.trace(cm) == 6 * 16 - 2
