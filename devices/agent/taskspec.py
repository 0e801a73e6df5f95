"""``eval.task`` of a job spec (protocol 3): what the eval set measures, and how the board
turns outputs into predictions (``tasks/``). ``spec.py`` holds it in ``EvalSet.task``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Tuple

from .errors import ProtocolError
from .specfields import get, number, section

TASK_KINDS = ("classification", "detection", "segmentation", "custom")
BOX_FORMATS = ("xyxy", "yxyx", "cxcywh")
LAYOUTS = ("nchw", "nhwc")


@dataclass(frozen=True)
class TaskSettings:
    """``eval.task``: what the eval set measures and how the board turns outputs into
    predictions (``tasks/``). Defaults are Ultralytics' validation settings (conf 0.001,
    IoU 0.7, 300 detections per image).

    - ``classification``: the top ``top_k`` classes of the first output per image.
    - ``detection``: ``decode`` (a board decoder: yolov8, yolov5, ssd) turns the outputs
      into boxes (x1, y1, x2, y2 in input pixels), scores and classes, then class-wise NMS
      (``iou``; ``agnostic``: across classes) keeps at most ``max_det`` per image above
      ``conf``; ``multi_label``: a box may count for every class above ``conf``.
      ``normalized``: the model's boxes are fractions of the input (None: the decoder's
      default, true for ssd only); ``box_format`` and ``background`` (scores' column 0 is
      the background) are SSD's.
    - ``segmentation``: per-pixel argmax over classes against the label masks ``y``,
      counted into a confusion matrix (``ignore_index`` pixels left out).
    - ``raw`` (``custom``, and ``detection`` without a board decoder): every output of
      every image goes back, at most ``max_raw_mb``, for the coordinator to decode and score.

    ``layout`` is the input's (where its height and width are).
    """

    kind: str = "classification"
    decode: Optional[str] = None
    conf: float = 0.001
    iou: float = 0.7
    max_det: int = 300
    agnostic: bool = False
    multi_label: bool = False
    normalized: Optional[bool] = None
    box_format: str = "xyxy"
    background: bool = False
    top_k: int = 5
    ignore_index: int = 255
    layout: str = "nchw"
    raw: bool = False
    max_raw_mb: float = 64.0


_TASK_KEYS = tuple(f.name for f in fields(TaskSettings))


def parse_task(ev: Dict[str, Any]) -> Optional[TaskSettings]:
    """``eval.task``: null or absent (no task), or an object whose keys default to ``TaskSettings``'s."""
    if ev.get("task") is None:
        return None
    from .tasks.registry import DECODERS  # the board's decoders, one table

    t = section(ev, "task", _TASK_KEYS, "eval.")
    at = "eval.task."
    d = TaskSettings()
    kind = get(t, "kind", at, (str,))
    if kind not in TASK_KINDS:
        raise ProtocolError("spec key %skind must be one of %s, got %r" % (at, ", ".join(TASK_KINDS), kind))

    def opt(key: str, types: Tuple[type, ...], nullable: bool = False) -> Any:
        return get(t, key, at, types, nullable) if key in t else getattr(d, key)

    decode = opt("decode", (str,), nullable=True)
    conf = float(number(t, "conf", at)) if "conf" in t else d.conf
    iou = float(number(t, "iou", at)) if "iou" in t else d.iou
    max_raw_mb = float(number(t, "max_raw_mb", at)) if "max_raw_mb" in t else d.max_raw_mb
    out = TaskSettings(
        kind=kind, decode=decode, conf=conf, iou=iou, max_det=opt("max_det", (int,)),
        agnostic=opt("agnostic", (bool,)), multi_label=opt("multi_label", (bool,)),
        normalized=opt("normalized", (bool,), nullable=True), box_format=opt("box_format", (str,)),
        background=opt("background", (bool,)), top_k=opt("top_k", (int,)), ignore_index=opt("ignore_index", (int,)),
        layout=opt("layout", (str,)), raw=opt("raw", (bool,)), max_raw_mb=max_raw_mb,
    )
    checks = (
        (decode is None or decode in DECODERS, "decode must be one of %s or null" % ", ".join(sorted(DECODERS)), decode),
        (0 <= conf <= 1, "conf must be in [0, 1]", conf),
        (0 < iou <= 1, "iou must be in (0, 1]", iou),
        (out.max_det >= 1, "max_det must be >= 1", out.max_det),
        (out.top_k >= 1, "top_k must be >= 1", out.top_k),
        (out.box_format in BOX_FORMATS, "box_format must be one of %s" % ", ".join(BOX_FORMATS), out.box_format),
        (out.layout in LAYOUTS, "layout must be one of %s" % ", ".join(LAYOUTS), out.layout),
        (max_raw_mb > 0, "max_raw_mb must be > 0", max_raw_mb),
        (out.raw or kind != "custom", "raw must be true for kind custom (the coordinator scores it)", out.raw),
        (not out.raw or kind in ("custom", "detection"), "raw is for kinds custom and detection", out.raw),
        (kind != "detection" or (decode is None) == out.raw,
         "decode is what a detection task needs (decoded here), or else raw: true (decoded by the coordinator)",
         decode),
        (decode is None or kind == "detection", "decode is for kind detection", decode),
    )
    for ok, what, value in checks:
        if not ok:
            raise ProtocolError("spec key %s%s, got %r" % (at, what, value))
    return out
