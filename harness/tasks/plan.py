"""A suite model's task, split into what its board is sent and what stays here.

``TaskPlan.settings`` is the wire's ``TaskSettings`` (devices/agent/spec.py): the board
decodes with it. A user's decoder or custom metric (``pkg.module:function``) is not in the
agent's zipapp, so the board sends raw outputs back (``raw``) and the coordinator runs
them (``score.py``). ``eval_path`` is the npz the board gets: the suite's own, or one
prepared from image files (``data.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.agent.spec import TaskSettings

if TYPE_CHECKING:
    from harness.config import ModelRef
    from harness.variants.cache import ArtifactCache


@dataclass(frozen=True)
class TaskPlan:
    kind: str
    settings: TaskSettings
    eval_path: Path
    decoder: str | None = None  # 'pkg.module:function' decoding raw outputs here (detection)
    metric: str | None = None  # 'pkg.module:function' computing a custom metric here
    name: str | None = None  # the custom metric's name


def image_shape(ref: ModelRef) -> tuple[int, ...]:
    """The shape of the model's (image) input: its first input's when it names several."""
    from harness.config.suite import BuiltinModel, TfliteModel

    if isinstance(ref, BuiltinModel):
        from harness.zoo import MODELS

        return tuple(MODELS[ref.builtin].input_shape)
    shape: Any = ref.input_shape
    if shape is None and isinstance(ref, TfliteModel):
        from harness.variants.tflite_file import input_shapes

        shape = input_shapes(Path(ref.tflite))[0]
    if isinstance(shape, dict):
        shape = next(iter(shape.values()))
    return tuple(int(d) for d in shape)


def eval_npz(ref: ModelRef, cache: ArtifactCache) -> tuple[Path | None, str]:
    """The model's eval set as an npz (prepared from its image files when it names them),
    and the input layout it was prepared in; (None, "nchw") without one."""
    from harness.config.suite import BuiltinModel, CocoEval, ImageFolderEval, MasksEval
    from harness.tasks import data

    ev = None if isinstance(ref, BuiltinModel) else ref.eval
    if isinstance(ref, BuiltinModel):
        from harness.zoo import MODELS

        if MODELS[ref.builtin].dataset == "digits":
            from harness.zoo.digits import ensure_digits

            return ensure_digits(cache)[0] / "test.npz", "nchw"
        return None, "nchw"
    if ev is None:
        return None, "nchw"
    if isinstance(ev, ImageFolderEval):
        return data.prepare_imagefolder(ev, image_shape(ref), cache), ev.preprocess.layout
    if isinstance(ev, CocoEval):
        return data.prepare_coco(ev, image_shape(ref), cache), ev.preprocess.layout
    if isinstance(ev, MasksEval):
        return data.prepare_masks(ev, image_shape(ref), cache), ev.preprocess.layout
    return Path(ev), _npz_layout(Path(ev))


def _npz_layout(path: Path) -> str:
    """A hand-made npz's layout: its ``layout`` array when it has one, else nchw."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            return str(f["layout"].reshape(-1)[0]) if "layout" in f.files else "nchw"
    except (OSError, ValueError):
        return "nchw"  # the board says what is wrong with the file


def host_eval(ref: ModelRef, cache: ArtifactCache) -> Path | None:
    """The eval npz the host's quality check reads (x, y class labels): a classification
    set only; a detection or segmentation set is the task's alone."""
    task = getattr(ref, "task", None)
    if task is not None and task.kind != "classification":
        return None
    return eval_npz(ref, cache)[0]


def plan_task(ref: ModelRef, cache: ArtifactCache) -> TaskPlan | None:
    """The model's task plan (its eval set prepared), or None when it has no task."""
    task = getattr(ref, "task", None)
    if task is None:
        return None
    path, layout = eval_npz(ref, cache)
    if path is None:
        return None  # a built-in without an eval split: nothing to measure
    settings = task.to_wire(layout)
    decoder = task.decode if task.kind == "detection" and not task.board_decoder else None
    return TaskPlan(task.kind, settings, path, decoder=decoder, metric=getattr(task, "metric", None),
                    name=getattr(task, "name", None) if task.kind == "custom" else None)


def plan_tasks(models: Any, cache_root: Path) -> tuple[dict[str, TaskPlan], dict[str, str]]:
    """Every model's task plan (its eval set prepared once, cached), by model name; and the
    models whose eval set could not be prepared, with the reason (their jobs fail with it)."""
    from harness.errors import HarnessError
    from harness.variants.cache import ArtifactCache

    cache = ArtifactCache(cache_root)
    plans: dict[str, TaskPlan] = {}
    failures: dict[str, str] = {}
    for ref in models:
        try:
            plan = plan_task(ref, cache)
        except (HarnessError, OSError, ValueError) as exc:
            failures[ref.label] = f"{type(exc).__name__}: {exc}"
            continue
        if plan is not None:
            plans[ref.label] = plan
    return plans, failures
