"""The one table of the board's detection decoders: ``eval.task.decode`` names a key.

A decoder takes a batch's outputs (``Runtime.run_all``), the task settings and the input's
(height, width), and returns ``detect.Detections``. A user's own decoder
(``pkg.module:function`` in a suite) is not in the zipapp: such a task runs with
``raw: true`` and the coordinator decodes (docs/tasks.md).
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from . import ssd, yolov5, yolov8

DECODERS: Dict[str, Callable[..., Any]] = {
    "yolov8": yolov8.decode,
    "yolov5": yolov5.decode,
    "ssd": ssd.decode,
}
