"""Typed model of a suite file: what to measure, how, and the release policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from devices.agent import spec as wire
from devices.agent.canary import CANARY_NAME
from devices.agent.scenarios import SCENARIOS, check_scenario
from harness.config.gate import Policy
from harness.config.operating import SINGLE, Axes, check_axes
from harness.config.inventory import DeviceKind, RuntimeNames
from harness.config.power import POWER_MODES_DOC, PowerModeAxis
from harness.config.yamlio import Strict, line_of, load_yaml, validate
from harness.errors import ConfigError


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative paths in a suite are relative to the suite file, not the caller's cwd."""
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else Path(base) / path


def _existing(value: Path | None, info: ValidationInfo) -> Path | None:
    path = _resolve_path(value, info)
    if path is not None and not path.is_file():
        raise ValueError(f"{'a directory, not a file' if path.is_dir() else 'file not found'}: {path}")
    return path


FilePath = Annotated[Path, AfterValidator(_existing)]
# A dimension is an integer as written (strict: not true, not 3.0); an input past MAX_INPUT_ELEMENTS
# values (4 GiB of float32) is no edge model's, and would only fail a build much later.
Shape = Annotated[tuple[Annotated[int, Field(strict=True)], ...],
                  Field(min_length=1, max_length=16, description="Input shape, batch first.")]
MAX_INPUT_ELEMENTS = 1 << 30


def _shape_problem(shape: tuple[int, ...]) -> str | None:
    if any(d < 1 for d in shape):
        return f"every dimension must be >= 1, got {list(shape)}"
    elements = 1
    for d in shape:
        elements *= d
    if elements > MAX_INPUT_ELEMENTS:
        return f"{list(shape)} is {elements:,} values, more than {MAX_INPUT_ELEMENTS:,} (4 GiB of float32) in one input"
    return None


def _named_shapes(value: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    for name, shape in value.items():
        if not name.strip():
            raise ValueError("an input name in input_shape is empty")
        problem = _shape_problem(shape)
        if problem:
            raise ValueError(f"input {name!r}: {problem}")
    return value


def _positive_shape(value: tuple[int, ...]) -> tuple[int, ...]:
    problem = _shape_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _shape_kind(value: Any) -> str:
    return "shape[mapping]" if isinstance(value, dict) else "shape[list]"  # "[...]": left out of error paths


# A model's input shape: one shape (its only, or first, input), or {input_name: shape} for each input.
InputShapes = Annotated[
    Union[
        Annotated[Shape, AfterValidator(_positive_shape), Tag("shape[list]")],
        Annotated[dict[str, Shape], Field(min_length=1), AfterValidator(_named_shapes), Tag("shape[mapping]")],
    ],
    Discriminator(_shape_kind),
]
_INPUT_SHAPE_DOC = ("Input shape, batch first; or {input_name: shape} for a model with several inputs (symbolic "
                    "dimensions of the graph are taken from it; a 4-D NCHW shape fits an NHWC input).")


def _existing_dir(value: Path, info: ValidationInfo) -> Path:
    path = _resolve_path(value, info)
    assert path is not None
    if not path.is_dir():
        raise ValueError(f"folder not found: {path}")
    return path


DirPath = Annotated[Path, AfterValidator(_existing_dir)]
_CALLABLE = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"  # 'pkg.module:function'


# -- tasks: what a model's eval set measures (harness.tasks; the board decodes: devices/agent/tasks) --

_TASK = wire.TaskSettings()


class ClassificationTask(Strict):
    """``{kind: classification}``: top-1 and top-k accuracy over the first output (class
    scores), against the labels ``y``; top-1 is the quality axis."""

    kind: Literal["classification"] = Field(..., description="classification")
    top_k: int = Field(_TASK.top_k, ge=1, le=1000, description="The k of top-k accuracy (stored as top5 whatever k is).")

    def to_wire(self, layout: str) -> wire.TaskSettings:
        return wire.TaskSettings(kind="classification", top_k=self.top_k, layout=layout)


class DetectionTask(Strict):
    """``{kind: detection, decode: yolov8}``: COCO mAP@[.5:.95] (the quality axis) and mAP@.5
    (pycocotools) of the boxes the board decodes, against the eval set's COCO ground truth.
    Defaults are Ultralytics' validation settings."""

    kind: Literal["detection"] = Field(..., description="detection")
    decode: str = Field(
        ..., pattern=r"^(yolov8|yolov5|ssd|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$",
        description="The head's decoder, run on the board: yolov8 ([1, 4+C, N]: cx, cy, w, h, class scores), "
        "yolov5 ([1, N, 5+C], with objectness), ssd (boxes [1, N, 4] + scores [1, N, C]); or "
        "'pkg.module:function', run on the coordinator over the raw outputs the board sends back (docs/tasks.md).",
    )  # fmt: skip
    conf: float = Field(_TASK.conf, ge=0, le=1, description="Score threshold before NMS.")
    iou: float = Field(_TASK.iou, gt=0, le=1, description="NMS IoU threshold (class-wise).")
    max_det: int = Field(_TASK.max_det, ge=1, description="Detections kept per image.")
    agnostic: bool = Field(_TASK.agnostic, description="NMS across classes instead of within each class.")
    multi_label: bool = Field(_TASK.multi_label, description="A box counts for every class above conf, not only its best.")
    normalized: bool | None = Field(
        _TASK.normalized, description="Boxes are fractions of the input size; null: the decoder's default (ssd: true, "
        "yolo: false, input pixels).",
    )  # fmt: skip
    box_format: Literal["xyxy", "yxyx", "cxcywh"] = Field("xyxy", description="ssd: the order of a box's 4 numbers.")
    background: bool = Field(_TASK.background, description="ssd: score column 0 is the background class.")
    max_raw_mb: float = Field(
        _TASK.max_raw_mb, gt=0, le=100, description="With a coordinator decoder: the most raw output the board sends back.")

    @property
    def board_decoder(self) -> bool:
        return ":" not in self.decode

    def to_wire(self, layout: str) -> wire.TaskSettings:
        board = self.board_decoder
        return wire.TaskSettings(
            kind="detection", decode=self.decode if board else None, conf=self.conf, iou=self.iou,
            max_det=self.max_det, agnostic=self.agnostic, multi_label=self.multi_label, normalized=self.normalized,
            box_format=self.box_format, background=self.background, layout=layout, raw=not board,
            max_raw_mb=self.max_raw_mb,
        )  # fmt: skip


class SegmentationTask(Strict):
    """``{kind: segmentation}``: mIoU (the quality axis) and pixel accuracy, from the confusion
    counts of per-pixel argmax classes against the label masks ``y``, counted on the board."""

    kind: Literal["segmentation"] = Field(..., description="segmentation")
    ignore_index: int = Field(_TASK.ignore_index, description="Mask value of pixels left out (VOC, Cityscapes: 255).")

    def to_wire(self, layout: str) -> wire.TaskSettings:
        return wire.TaskSettings(kind="segmentation", ignore_index=self.ignore_index, layout=layout)


class CustomTask(Strict):
    """``{kind: custom, metric: pkg.module:function}``: the board sends back every raw output
    of the eval set; the coordinator calls ``function(outputs, labels)`` (outputs: one array
    per model output, all images; labels: the npz's ``y`` or None) for a float, or a dict of
    floats whose first is the headline."""

    kind: Literal["custom"] = Field(..., description="custom")
    metric: str = Field(..., pattern=_CALLABLE, description="'pkg.module:function' computing the metric.")
    name: str = Field("custom", pattern=r"^[A-Za-z_]\w*$", description="The metric's name in results.")
    max_raw_mb: float = Field(
        _TASK.max_raw_mb, gt=0, le=100, description="The most raw output the board sends back (fewer images if over).")

    def to_wire(self, layout: str) -> wire.TaskSettings:
        return wire.TaskSettings(kind="custom", layout=layout, raw=True, max_raw_mb=self.max_raw_mb)


Task = Annotated[
    Union[ClassificationTask, DetectionTask, SegmentationTask, CustomTask],
    Field(discriminator="kind"),
]


class Preprocess(Strict):
    """How images become the model's input (once, on the coordinator: boards need no image
    library): resize to the input's height and width, scale, normalize, order channels."""

    resize: Literal["stretch", "letterbox", "center-crop"] = Field(
        "stretch", description="stretch to the input size; letterbox: keep the aspect ratio, pad with pad_value "
        "(YOLO); center-crop: shorter side to the input size, then the center.",
    )  # fmt: skip
    scale: float = Field(1 / 255, gt=0, description="Pixel values (0-255) are multiplied by this first.")
    mean: tuple[float, ...] = Field((0.0, 0.0, 0.0), min_length=1, max_length=3, description="Subtracted per channel after scale.")
    std: tuple[float, ...] = Field((1.0, 1.0, 1.0), min_length=1, max_length=3, description="Divided per channel after mean.")
    channels: Literal["rgb", "bgr", "gray"] = Field("rgb", description="Channel order (gray: one channel).")
    layout: Literal["nchw", "nhwc"] = Field("nchw", description="Where the channels go in the input shape.")
    dtype: Literal["float32", "float16", "uint8", "int8"] = Field(
        "float32", description="The input's dtype; uint8 takes the resized pixels as they are, int8 pixel - 128 "
        "(scale, mean and std are for float inputs).",
    )  # fmt: skip
    pad_value: int = Field(114, ge=0, le=255, description="letterbox: the padding's grey level.")

    @model_validator(mode="after")
    def _no_zero_std(self) -> Preprocess:
        if any(s == 0 for s in self.std):
            raise ValueError("std must not be 0")
        return self


class ImageFolderEval(Strict):
    """``eval: {imagefolder: DIR}``: one sub-folder of images per class (torchvision's
    ImageFolder); a class's label is its folder's index in ``classes`` (default: the folder
    names, sorted)."""

    imagefolder: DirPath = Field(..., description="The folder of class folders (relative to the suite file).")
    classes: tuple[str, ...] | None = Field(None, min_length=1, description="Class folder names in label order.")
    preprocess: Preprocess = Field(default_factory=Preprocess, description="Image to input.")
    max_images: int | None = Field(None, ge=1, description="The first N images (sorted by class, then name).")


class CocoEval(Strict):
    """``eval: {coco: instances.json, images: DIR}``: a COCO detection set (the annotations
    file and its images folder). Model class i is the i-th category sorted by id (the
    80-class order of YOLO models trained on COCO), unless ``category_ids`` says otherwise."""

    coco: FilePath = Field(..., description="COCO instances JSON (relative to the suite file).")
    images: DirPath = Field(..., description="Folder holding the images the JSON names.")
    category_ids: tuple[int, ...] | None = Field(None, min_length=1, description="Model class i -> COCO category id.")
    preprocess: Preprocess = Field(
        default_factory=lambda: Preprocess(resize="letterbox"), description="Image to input (default: letterbox).")
    max_images: int | None = Field(None, ge=1, description="The first N images of the JSON, by image id.")


class MasksEval(Strict):
    """``eval: {images: DIR, masks: DIR}``: images and label masks of the same file stem
    (PNG, one class index per pixel; 255: ignored); masks are resized by nearest neighbour."""

    images: DirPath = Field(..., description="Folder of images.")
    masks: DirPath = Field(..., description="Folder of label masks (PNG, class index per pixel).")
    preprocess: Preprocess = Field(default_factory=Preprocess, description="Image to input.")
    max_images: int | None = Field(None, ge=1, description="The first N images, by name.")


class ImagesData(Strict):
    """``{images: DIR}``: unlabelled images (every image file in the folder, sorted by name), for
    calibration (``calib:``) and for training that matches the original model's outputs
    (``train:`` of pruning and distillation)."""

    images: DirPath = Field(..., description="Folder of images (relative to the suite file).")
    preprocess: Preprocess = Field(default_factory=Preprocess, description="Image to input.")
    max_images: int | None = Field(None, ge=1, description="The first N images, by name.")


def _eval_tag(value: Any) -> str | None:
    if isinstance(value, (str, Path)):
        return "npz"
    if isinstance(value, dict):
        for key, tag in (("imagefolder", "imagefolder"), ("coco", "coco"), ("masks", "masks")):
            if key in value:
                return tag
        return None
    return {ImageFolderEval: "imagefolder", CocoEval: "coco", MasksEval: "masks"}.get(type(value))


EvalRef = Annotated[
    Union[
        Annotated[FilePath, Tag("npz")],
        Annotated[ImageFolderEval, Tag("imagefolder")],
        Annotated[CocoEval, Tag("coco")],
        Annotated[MasksEval, Tag("masks")],
    ],
    Discriminator(
        _eval_tag,
        custom_error_type="eval_kind",
        custom_error_message="eval is an npz file, {imagefolder: DIR}, {coco: FILE, images: DIR} or "
        "{images: DIR, masks: DIR}",
    ),
]

def _data_tag(value: Any) -> str | None:
    if isinstance(value, dict) and "images" in value and not {"coco", "masks"} & set(value):
        return "images"
    if isinstance(value, ImagesData):
        return "images"
    tag = _eval_tag(value)
    return tag if tag in ("npz", "imagefolder") else None


# Data a recipe learns from (``calib:``, ``train:``): inputs, with class labels where the source has them.
DataRef = Annotated[
    Union[
        Annotated[FilePath, Tag("npz")],
        Annotated[ImageFolderEval, Tag("imagefolder")],
        Annotated[ImagesData, Tag("images")],
    ],
    Discriminator(
        _data_tag,
        custom_error_type="data_kind",
        custom_error_message="expected an npz file, {imagefolder: DIR} or {images: DIR}",
    ),
]
_CALIB_DOC = ("Calibration inputs of the int8 recipes: an npz (x, or one array per input named after it), "
              "{imagefolder: DIR} or {images: DIR}, prepared with its preprocess. Without it they calibrate on "
              "seeded synthetic inputs and the variant is marked 'synthetic'.")
_TRAIN_DOC = ("Training data of pruning's fine-tuning and distillation: an npz (x, and y class labels for "
              "cross-entropy), {imagefolder: DIR} (labelled) or {images: DIR} (unlabelled: the student matches "
              "the original model's outputs on them).")
_SYNTHETIC_DOC = ("Let pruning and distillation train on seeded synthetic inputs when the model has no train "
                  "data (they refuse otherwise); such variants are marked 'synthetic'.")
_EVAL_DOC = ("The eval set: an npz (x, y for accuracy; what the task reads: docs/tasks.md), or files prepared once "
             "into one: {imagefolder: DIR}, {coco: FILE, images: DIR}, {images: DIR, masks: DIR}.")
_TASK_DOC = "What the eval set measures (docs/tasks.md); null: top-1 accuracy over the first output."
# The task each prepared eval source is for.
_SOURCE_TASK = {ImageFolderEval: "classification", CocoEval: "detection", MasksEval: "segmentation"}


def check_task(model: Any) -> Any:
    """A model's task and eval set fit: a task other than classification needs an eval set,
    and a prepared one is for its own task."""
    task, ev = getattr(model, "task", None), getattr(model, "eval", None)
    kind = None if task is None else task.kind
    if kind not in (None, "classification") and ev is None and not isinstance(model, BuiltinModel):
        raise ValueError(f"a {kind} task needs an eval set ('eval:')")
    if isinstance(model, BuiltinModel) and kind not in (None, "classification"):
        raise ValueError("a built-in model is a classifier: its task can only be classification")
    want = _SOURCE_TASK.get(type(ev))
    if want is not None and (kind or "classification") != want:
        source = next(iter(type(ev).model_fields))
        raise ValueError(f"eval {{{source}: ...}} is a {want} set: give the model 'task: {{kind: {want}, ...}}'"
                         + (f", not {kind}" if kind else ""))
    if isinstance(ev, Path):
        _check_npz(ev, getattr(model, "input_shape", None), kind)
    return model


def _check_npz(path: Path, shape: Any, kind: str | None) -> None:
    """An npz eval set holds what its board will read, as the board checks it before a job
    (devices.agent.accuracy: x per sample shaped like the input, y for the labels the task
    needs): only the arrays' headers are read. Without one input shape (several inputs, or a
    tflite file's own), only that it is an npz with an x."""
    from devices.agent.accuracy import check_eval_set, npz_array_shape
    from devices.agent.errors import ArtifactIncompatible

    try:
        if isinstance(shape, tuple):
            check_eval_set(str(path), shape, kind)
        else:
            npz_array_shape(str(path), "x")
    except ArtifactIncompatible as e:
        raise ValueError(f"eval: {e}") from None


def _known_builtin(name: str) -> str:
    from harness.zoo import MODELS

    if name not in MODELS:
        raise ValueError(f"unknown built-in model {name!r}; known: {', '.join(sorted(MODELS))}")
    return name


class BuiltinModel(Strict):
    kind: ClassVar[str] = "torch"  # what recipes start from (``variants.build.source_problem``)
    builtin: Annotated[str, AfterValidator(_known_builtin)] = Field(..., description="A model from the zoo.")
    name: str | None = Field(None, description="Name in results (defaults to the builtin's name).")
    task: Task | None = Field(None, description="What its eval split measures: {kind: classification} adds top-5.")

    @model_validator(mode="after")
    def _task_fits(self) -> Any:
        return check_task(self)

    @property
    def label(self) -> str:
        return self.name or self.builtin


class OnnxModel(Strict):
    kind: ClassVar[str] = "onnx"
    name: str = Field(..., min_length=1, description="Name in results.")
    onnx: FilePath = Field(..., description="ONNX file (relative to the suite file).")
    input_shape: InputShapes = Field(..., description=_INPUT_SHAPE_DOC)
    eval: EvalRef | None = Field(None, description=_EVAL_DOC)
    task: Task | None = Field(None, description=_TASK_DOC)
    calib: DataRef | None = Field(None, description=_CALIB_DOC)

    @model_validator(mode="after")
    def _task_fits(self) -> Any:
        return check_task(self)

    @property
    def label(self) -> str:
        return self.name


_REF = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"


class FactoryModel(Strict):
    kind: ClassVar[str] = "torch"
    name: str = Field(..., min_length=1, description="Name in results.")
    factory: str = Field(..., pattern=_REF, description="'pkg.module:function' returning an nn.Module.")
    input_shape: InputShapes = Field(..., description=_INPUT_SHAPE_DOC)
    eval: EvalRef | None = Field(None, description=_EVAL_DOC)
    task: Task | None = Field(None, description=_TASK_DOC)
    dataset: str | None = Field(
        None, pattern=_REF,
        description="'pkg.module:function' returning {'train': (x, y), 'calib': (x, y), 'test': (x, y)}, each "
        "optional: train feeds fine-tuning and distillation, calib quantization, test accuracy (unless eval is set); "
        "'calib:' and 'train:' take precedence over its splits.",
    )  # fmt: skip
    calib: DataRef | None = Field(None, description=_CALIB_DOC)
    train: DataRef | None = Field(None, description=_TRAIN_DOC)
    synthetic_data: bool = Field(False, description=_SYNTHETIC_DOC)

    @model_validator(mode="after")
    def _task_fits(self) -> Any:
        return check_task(self)

    @property
    def label(self) -> str:
        return self.name


class TfliteModel(Strict):
    """A user's own .tflite file, measured on LiteRT (its variants are the tflite-* recipes)."""

    kind: ClassVar[str] = "tflite"
    name: str = Field(..., min_length=1, description="Name in results.")
    tflite: FilePath = Field(..., description=".tflite file (relative to the suite file).")
    input_shape: Annotated[Shape, AfterValidator(_positive_shape)] | None = Field(
        None, description="Shape of the data fed (batch first); default: the file's own input shape. "
        "NCHW data is transposed for an NHWC model (read from the file).",
    )  # fmt: skip
    eval: EvalRef | None = Field(None, description=_EVAL_DOC)
    task: Task | None = Field(None, description=_TASK_DOC)
    calib: DataRef | None = Field(None, description=_CALIB_DOC + " (tflite-int8 reads a float model's 'x'.)")

    @model_validator(mode="after")
    def _task_fits(self) -> Any:
        return check_task(self)

    @property
    def label(self) -> str:
        return self.name


def _model_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("builtin", "onnx", "factory", "tflite"):
            if key in value:
                return f"{key}-model"
        return None
    return None if not isinstance(value, BaseModel) else f"{type(value).__name__[:-5].lower()}-model"


ModelRef = Annotated[
    Union[
        Annotated[BuiltinModel, Tag("builtin-model")],
        Annotated[OnnxModel, Tag("onnx-model")],
        Annotated[FactoryModel, Tag("factory-model")],
        Annotated[TfliteModel, Tag("tflite-model")],
    ],
    Discriminator(
        _model_tag,
        custom_error_type="model_kind",
        custom_error_message="a model needs one of 'builtin', 'onnx', 'factory' or 'tflite'",
    ),
]


# No wait, window or timeout of a job is longer than a day: a bigger number is a typo, and an
# infinite one (YAML's .inf) would hang a sweep or overflow a timer.
DAY_S = 86400.0
# The job's defaults are the wire's (the agent's spec module): one definition on both sides.
_MEASURE, _TARGET, _QUIET = wire.MeasureSettings(), wire.TargetSettings(), wire.QuietSettings()


class Target(Strict):
    """Stop the timed window once a percentile is known this well (the agent's
    ``earlystop.py``): its distribution-free interval at ``confidence`` must lie within
    ``rel_error`` of the estimate on both sides. ``min_iters`` and ``min_s`` still come first."""

    percentile: float = Field(_TARGET.percentile, gt=0, lt=100, description="The percentile to pin down, e.g. 99.")
    rel_error: float = Field(
        _TARGET.rel_error, gt=0, description="Both ends of the interval within this fraction of the estimate (0.02 = 2%)."
    )
    confidence: float = Field(_TARGET.confidence, gt=0, lt=1, description="Coverage of the order-statistics interval.")


class Quiet(Strict):
    """What a quiet board is, read just before each timed window (the agent's ``boardstate.py``);
    above any threshold the agent waits up to ``wait_s``, then measures anyway and marks the
    result ``noisy`` with the reason."""

    max_other_cpu_pct: float = Field(
        _QUIET.max_other_cpu_pct, ge=0, description="Other processes' CPU use, % of all CPUs, over 1 s.")
    max_load_per_cpu: float = Field(_QUIET.max_load_per_cpu, ge=0, description="1-minute load average per CPU.")
    min_free_mb: float = Field(_QUIET.min_free_mb, ge=0, description="Available memory (MemAvailable), MB.")
    wait_s: float = Field(
        _QUIET.wait_s, ge=0, le=DAY_S, description="How long to wait for a quiet board (also bounded by a quarter of the job's time left)."
    )


class MeasureSettings(Strict):
    """How one job is timed.

    Warm-up runs until both ``warmup_iters`` and ``warmup_s`` are met; the timed window
    then runs until both ``min_iters`` and ``min_s`` are met (trtexec: >= 3 s and >= 10
    iterations; optimum-benchmark: >= 10 iterations and >= 10 s). Every iteration's
    latency is kept.
    """

    warmup_iters: int = Field(_MEASURE.warmup_iters, ge=0, description="Warm-up iterations (at least).")
    warmup_s: float = Field(_MEASURE.warmup_s, ge=0, le=DAY_S, description="Warm-up seconds (at least).")
    min_iters: int = Field(_MEASURE.min_iters, ge=1, description="Timed iterations (at least).")
    min_s: float = Field(_MEASURE.min_s, ge=0, le=DAY_S, description="Timed seconds (at least).")
    max_iters: int | None = Field(
        _MEASURE.max_iters, ge=1, description="Stop the timed window here even if min_s is not met.")
    timeout_s: float = Field(_MEASURE.timeout_s, gt=0, le=DAY_S, description="A job taking longer fails with a timeout.")
    threads: int | Literal["auto"] = Field(
        _MEASURE.threads or "auto", description="Inference threads; 'auto' = the runtime's default.")
    seed: int = Field(_MEASURE.seed, ge=0, lt=2**32, description="Seed of the random timing input (numpy's range).")
    target: Target | None = Field(
        _MEASURE.target,
        description="Keep the timed window going until this percentile's confidence interval is tight "
        "(after min_iters and min_s; capped by max_iters, else by 80% of the time left, 50% with an eval set). "
        "null: stop on min_iters and min_s alone.",
    )  # fmt: skip
    quiet: Quiet | None = Field(
        default_factory=Quiet,
        description="Read the board's load before each window, wait for a quiet board, mark the result 'noisy' "
        "otherwise. null: not read.",
    )  # fmt: skip
    repeats: int = Field(
        1, ge=1, le=100,
        description="Timed windows per job, each in a fresh agent process (pyperf spreads values over fresh "
        "processes: run-to-run noise lives there); the headline p50 is the median of the repeats' p50s.",
    )  # fmt: skip
    order: Literal["sequential", "interleaved"] = Field(
        "sequential",
        description="With repeats, 'interleaved' measures a board's jobs A B C C B A A B C ... so drift "
        "(heat, other load) cannot pass for a difference between variants; 'sequential' runs each job's "
        "repeats back to back.",
    )  # fmt: skip
    scenario: str | None = Field(
        None, description="How the board is loaded while timed (docs/measurement.md#scenarios-and-axes): "
        "single-stream (null: the default), offline, multi-stream or paced.",
    )  # fmt: skip
    inflight: int | None = Field(
        None, ge=1, le=1024, description="offline, multi-stream, paced: requests in flight; null: the runtime's own "
        "number (OpenVINO's optimal number of requests, one per core on ONNX Runtime, else 2; multi-stream: at most "
        "samples_per_query). With p99_bound_ms: the search's ceiling (null: 64).",
    )  # fmt: skip
    samples_per_query: int | None = Field(
        None, ge=1, le=1024, description="multi-stream: samples per query, issued as parallel requests; null: 8 "
        "(MLPerf's).",
    )  # fmt: skip
    rate_hz: float | None = Field(None, gt=0, le=1e6, description="paced: arrivals per second (required there).")
    arrivals: Literal["uniform", "poisson"] | None = Field(
        None, description="paced: evenly spaced, or poisson (exponential gaps seeded by seed, as MLPerf's Server); "
        "null: uniform.",
    )  # fmt: skip
    p99_bound_ms: float | None = Field(
        None, gt=0, le=DAY_S * 1e3, description="offline: search the requests in flight (doubling, then bisection) for "
        "the most throughput whose p99 stays under this bound, on the board in the job's process; the timed window "
        "then runs at the chosen point.",
    )  # fmt: skip

    @field_validator("threads")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("threads must be >= 1 or 'auto'")
        return v

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, v: str | None) -> str | None:
        if v is not None and v not in SCENARIOS:
            raise ValueError(f"unknown scenario {v!r}; known: {', '.join(SCENARIOS)}")
        return v

    @model_validator(mode="after")
    def _scenario_keys(self) -> MeasureSettings:
        """The agent's own check of the operating point (one definition: ``devices.agent.scenarios``)."""
        problem = check_scenario(self.to_wire())
        if problem:
            raise ValueError(problem)
        return self

    def to_wire(self) -> wire.MeasureSettings:
        """What the board is sent: these settings less the coordinator's own (``repeats``, ``order``)."""
        return wire.MeasureSettings(
            warmup_iters=self.warmup_iters, warmup_s=self.warmup_s, min_iters=self.min_iters, min_s=self.min_s,
            max_iters=self.max_iters, timeout_s=self.timeout_s, threads=None if self.threads == "auto" else self.threads,
            seed=self.seed, target=self.target and wire.TargetSettings(**self.target.model_dump()),
            quiet=self.quiet and wire.QuietSettings(**self.quiet.model_dump()), scenario=self.scenario or SINGLE,
            inflight=self.inflight, samples_per_query=self.samples_per_query or _MEASURE.samples_per_query,
            rate_hz=self.rate_hz, arrivals=self.arrivals or _MEASURE.arrivals, p99_bound_ms=self.p99_bound_ms,
        )  # fmt: skip


class DeviceSelector(Strict):
    names: tuple[str, ...] | None = Field(None, description="Only these devices.")
    tags: tuple[str, ...] | None = Field(None, description="Only devices with any of these tags.")
    kinds: tuple[DeviceKind, ...] | None = Field(None, description="Only devices of these kinds.")


def parse_chain(text: str, custom: dict[str, dict[str, Any]] | None = None) -> tuple[str, ...]:
    """``"distill > prune-channels-25 > int8-static"`` -> its recipe names, checked."""
    from harness.variants.build import make_recipes, split_chain

    steps = split_chain(text)
    make_recipes(steps, custom)  # raises ConfigError (a ValueError) naming the unknown step
    return steps


def _recipe_definition(definition: dict[str, Any]) -> dict[str, Any]:
    from harness.variants.build import make_recipe

    if "kind" not in definition:
        raise ValueError("a recipe definition needs 'kind' (a built-in recipe name)")
    make_recipe(str(definition["kind"]), definition)
    return definition


def _variant(text: str, info: ValidationInfo) -> str:
    """Normalised chain; the suite's own ``recipes`` (validated before) count as names. Every
    model (validated before) must be able to make it, and its recipes' extras be installed."""
    from harness.variants.build import make_recipes, source_problem, split_chain

    data = info.data or {}
    steps = split_chain(text)
    recipes = make_recipes(steps, data.get("recipes"))  # a ConfigError (a ValueError) names an unknown step
    for model in data.get("models") or ():
        problem = source_problem(recipes, model.kind, repr(model.label))
        if problem:
            raise ValueError(problem)
    missing = next((m for m in (r.missing() for r in recipes) if m), None)
    if missing:
        raise ValueError(missing)
    return " > ".join(steps)


def _not_builtin(name: str) -> str:
    from harness.variants import RECIPES

    if name in RECIPES:
        raise ValueError(f"recipe name {name!r} is built in; pick another name for your definition")
    return name


RecipeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]+$"), AfterValidator(_not_builtin)]


class Faults(Strict):
    """How a sweep treats boards that drop; ``retries`` (top level) bounds each job's retries."""

    down_after: int = Field(2, ge=1, description="Transport failures in a row that mark a board down.")
    reprobe_s: float = Field(30.0, gt=0, le=DAY_S, description="A down board is re-probed after this long, then twice as long.")
    reprobe_max: int = Field(3, ge=1, description="Failed re-probes after which a board is given up for the sweep.")
    grace_s: float = Field(
        60.0, ge=0, le=DAY_S, description="The coordinator kills a job this long after measure.timeout_s (the agent's own)."
    )


class LeaseSettings(Strict):
    """The exclusive lease a job holds on its board (a lock in one place per board, whatever
    work directory an inventory names), so two coordinators never measure one board at once."""

    ttl_s: float = Field(
        60.0, ge=5, le=DAY_S, description="A lease not renewed for this long has expired and may be taken over "
        "(the coordinator renews it every ttl_s / 4 while a job runs).",
    )  # fmt: skip
    wait_s: float = Field(
        1800.0, ge=0, le=DAY_S, description="How long a job waits for a board another coordinator holds before it is "
        "stored as failed ('board busy').",
    )  # fmt: skip


class ReportSettings(Strict):
    """What ``harness report`` recommends against: per device and model, the most accurate
    variant whose p50 (and, when set, energy per inference) fits. ``--budget-ms`` and
    ``--budget-mj`` on the command line override these per field."""

    latency_budget_ms: float | None = Field(None, gt=0, description="Largest acceptable p50 latency (ms).")
    energy_budget_mj: float | None = Field(
        None, gt=0, description="Largest acceptable energy per inference (mJ); jobs without energy never fit."
    )
    p99_budget_ms: float | None = Field(None, gt=0, description="Largest acceptable p99 latency (ms).")
    min_throughput: float | None = Field(
        None, gt=0, description="Smallest acceptable throughput (inferences/s, batch included); a paced result must "
        "also have kept up with its rate.",
    )  # fmt: skip


class FidelityLimits(Strict):
    """How far a variant's outputs may be from its reference's (the chain's fp32 variant, i.e.
    the source model) on the same inputs before the variant is marked ``degraded``: every
    output must meet every limit set; null: not checked. Scored on the coordinator for every
    variant (``harness.variants.quality``, docs/results.md#fidelity-and-the-degraded-mark).

    Why 0.95 and 10 dB by default: the defaults must pass every precision conversion of the
    built-in models and still catch a broken one. Measured (onnxruntime 1.32, openvino 2026.4,
    ai-edge-litert 2.3; worst output, cosine / SNR): fp16 0.99995-1.0 / 40-64 dB everywhere;
    int8-static, int8-dynamic, int8-mixed and ov-int8 on digits-cnn 0.9996-0.9999 / 27-37 dB,
    on resnet18-224 0.9992-0.9995 / 28-30 dB, on mobilenetv2-224 (seeded random weights,
    synthetic inputs) 0.976-0.979 / 13.1-13.8 dB; tflite-int8 on digits-cnn 0.998 / 19.3 dB.
    So cosine 0.99 and 20 dB would mark the quickstart's int8 MobileNetV2 and a LiteRT int8
    file with 100 % top-1 agreement. A broken conversion is far below: PP-OCRv4 detection in
    fp16 scored cosine 0.013, in int8-dynamic 0.18. Cosine is blind to scale, SNR is not: an
    output halved scores cosine 1 and 6 dB. Re-trained variants (pruned with fine-tuning,
    distilled) are different functions by design and often fall below (digits-cnn: cosine
    0.89-0.95, 6-8 dB at 95-98 % accuracy); where the eval set measures their accuracy, that,
    not the mark, decides whether the report keeps them (docs/results.md)."""

    min_cosine: float | None = Field(
        0.95, ge=-1, le=1, description="Smallest cosine similarity of an output with the reference's (per sample, "
        "averaged); blind to scale.",
    )  # fmt: skip
    min_snr_db: float | None = Field(
        10.0, description="Smallest signal-to-noise ratio of an output, 10 log10(||ref||^2 / ||ref - out||^2) in dB "
        "(10 dB: the error's energy is a tenth of the output's).",
    )  # fmt: skip
    max_abs_err: float | None = Field(
        None, gt=0, description="Largest absolute difference of any output value from the reference's, in the "
        "output's own units (default: not checked; it depends on the output's scale).",
    )  # fmt: skip


class Fidelity(FidelityLimits):
    """``fidelity: {min_cosine: 0.95, min_snr_db: 10, models: {my-det: {min_cosine: 0.99}}}``: the
    limits of every model, and per model (by its name in results) the limits it sets instead."""

    models: dict[str, FidelityLimits] = Field(
        default_factory=dict, description="Per model: the limits it names replace the suite's (null turns one off)."
    )

    def limits_for(self, model: str) -> FidelityLimits:
        """The limits that apply to ``model``: the suite's, with the model's own keys replacing them."""
        own = self.models.get(model)
        base = {k: getattr(self, k) for k in FidelityLimits.model_fields}
        if own is not None:
            base.update({k: getattr(own, k) for k in own.model_fields_set})
        return FidelityLimits(**base)


class Canary(Strict):
    """``canary: {every: N, interleaved: true}``: the board canary first and last on every board,
    also after every N timed windows of the board, and/or interleaved with every job in its own
    process (the timed window alternates blocks of the job and of the canary)."""

    every: int | None = Field(
        None, ge=1, description="Timed windows of a board (jobs, or their repeats) between two canary windows.")
    interleaved: bool = Field(
        False, description="Alternate the canary with every job inside its timed window, in its process: the "
        "gate's most precise correction for the board's speed (the window takes about twice as long; energy "
        "is not reported for it).",
    )  # fmt: skip
    block_s: float = Field(0.3, gt=0, le=10, description="Length of one interleaved block of the job or the canary (s).")

    @model_validator(mode="after")
    def _says_where(self) -> Canary:
        if self.every is None and not self.interleaved:
            raise ValueError("set 'every: N', 'interleaved: true' or both (or write 'canary: true')")
        return self


class Suite(Strict):
    name: str = Field(..., min_length=1, description="Suite name, stored with every run.")
    description: str | None = Field(None, description="Free text.")
    models: tuple[ModelRef, ...] = Field(..., min_length=1, description="Models to compress and measure.")
    recipes: dict[RecipeName, Annotated[dict[str, Any], AfterValidator(_recipe_definition)]] = Field(
        default_factory=dict,
        description="Named recipes with options: {my-int8: {kind: int8-static, calibration: entropy}}.",
    )
    variants: tuple[Annotated[str, AfterValidator(_variant)], ...] = Field(
        ("fp32",), min_length=1, description="Recipe names or chains 'a > b > c'."
    )
    runtimes: RuntimeNames = Field(("onnxruntime",), min_length=1, description="Runtimes to measure on.")
    devices: DeviceSelector = Field(default_factory=DeviceSelector, description="Which inventory devices.")
    power_modes: PowerModeAxis | None = Field(None, description=POWER_MODES_DOC)
    measure: MeasureSettings = Field(default_factory=MeasureSettings, description="Timing protocol.")
    axes: Axes | None = Field(
        None, description="Sweep these settings: every job at every combination of the values "
        "(docs/measurement.md#scenarios-and-axes).",
    )  # fmt: skip
    runtime_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-runtime options passed to the agent, e.g. openvino: {inference_precision: f32}."
    )
    retries: int = Field(2, ge=0, description="Retries of a job that failed for a transport reason.")
    faults: Faults = Field(default_factory=Faults, description="Marking boards down and re-probing them.")
    lease: LeaseSettings = Field(default_factory=LeaseSettings, description="Exclusive use of a board per job.")
    canary: bool | Canary = Field(
        False, description="Measure a fixed built-in model first and last on every board (true), also after "
        "every N timed windows of the board ({every: N}) and/or inside every job's timed window ({interleaved: "
        "true}): the gate measures each result against the canary next to it.",
    )  # fmt: skip
    gate: Policy | None = Field(None, description="Release policy (see 'harness gate').")
    report: ReportSettings | None = Field(None, description="Report settings: budgets of the recommendation table.")
    fidelity: Fidelity | None = Field(
        None, description="How far a variant's outputs may be from its reference model's before it is marked "
        "'degraded' (default: the limits' defaults for every model).",
    )  # fmt: skip

    @property
    def canary_every(self) -> int | None:
        """Jobs of a board between two canary windows; None without windows between the first and last."""
        return self.canary.every if isinstance(self.canary, Canary) else None

    @property
    def canary_block_s(self) -> float | None:
        """The interleaved canary's block length; None when the canary is not interleaved."""
        return self.canary.block_s if isinstance(self.canary, Canary) and self.canary.interleaved else None

    @field_validator("axes")
    @classmethod
    def _axes_fit(cls, v: Axes | None, info: ValidationInfo) -> Axes | None:
        data = info.data or {}
        if "measure" in data:
            check_axes(v, data["measure"], data.get("models"))
        return v

    @field_validator("canary")
    @classmethod
    def _canary_fits(cls, v: bool | Canary, info: ValidationInfo) -> bool | Canary:
        measure = (info.data or {}).get("measure")
        if isinstance(v, Canary) and v.interleaved and measure is not None and (measure.scenario or SINGLE) != SINGLE:
            raise ValueError("the interleaved canary runs beside single-stream jobs only (measure.scenario is "
                             f"{measure.scenario}); use canary: {{every: N}} or true")
        return v

    @field_validator("variants")
    @classmethod
    def _distinct(cls, variants: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(variants)) != len(variants):
            raise ValueError("a variant is listed twice")
        return variants

    @field_validator("models")
    @classmethod
    def _unique_labels(cls, models: tuple[ModelRef, ...]) -> tuple[ModelRef, ...]:
        labels = [m.label for m in models]
        if CANARY_NAME in labels:
            raise ValueError(f"the model name {CANARY_NAME!r} is reserved for the board canary ('canary: true'); "
                             "pick another name")
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"two models are named {label!r}; give one a different 'name'")
        return models

    @field_validator("fidelity")
    @classmethod
    def _fidelity_models_known(cls, v: Fidelity | None, info: ValidationInfo) -> Fidelity | None:
        labels = [m.label for m in (info.data or {}).get("models") or ()]
        unknown = [name for name in (v.models if v is not None else ()) if name not in labels]
        if unknown and labels:
            raise ValueError(f"fidelity.models names {', '.join(map(repr, unknown))}, not a model of this suite "
                             f"(models: {', '.join(labels)})")
        return v

    @property
    def fidelity_limits(self) -> Fidelity:
        """The suite's ``fidelity``, or the default limits."""
        return self.fidelity or Fidelity()

    @field_validator("runtime_options")
    @classmethod
    def _options_for_known(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Known runtimes, and options their runtime class accepts (the agent's own check, at
        load, not on the board); the error's path ends at the offending key where there is one."""
        from pydantic import ValidationError

        from devices.agent.runtimes import get_runtime
        from harness.config.names import check_runtimes

        def error(runtime: Any, options: dict[str, Any]) -> ValueError | None:
            try:
                runtime(options, None)  # checks keys and values, imports no library
            except ValueError as exc:
                return exc
            return None

        check_runtimes(tuple(v))
        for name, options in v.items():
            runtime = get_runtime(name)
            exc = error(runtime, options)
            key = next((k for k in options if error(runtime, {k: options[k]})), None) if exc else None
            if exc is None and (exc := error(runtime, runtime.canary_options(options))):
                exc = ValueError(f"canary: {exc}")  # the canary beside a job runs with these options
            if exc is not None:
                loc = (name,) if key is None else (name, key)
                raise ValidationError.from_exception_data("runtime_options", [
                    {"type": "value_error", "loc": loc, "input": options.get(key, options), "ctx": {"error": exc}}])
        return v


def load_suite(path: Path) -> Suite:
    """The suite file, validated; its ``factory:`` and ``dataset:`` references imported (a
    suite is code: they run the user's modules), so a bad one is exit 2 here, not a failed job."""
    data = load_yaml(path)
    suite = validate(Suite, data, path)
    for i, model in enumerate(suite.models):
        for key in ("factory", "dataset"):
            ref = getattr(model, key, None)
            problem = ref and _import_problem(ref)
            if problem:
                line = line_of(data, ("models", i, key))
                raise ConfigError(problem, location=f"{path}:{line}" if line else str(path), field=f"models.{i}.{key}")
    return suite


def _import_problem(ref: str) -> str | None:
    """Why ``"pkg.module:function"`` cannot be imported, or None."""
    from harness.zoo.registry import import_ref

    try:
        func = import_ref(ref)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything while importing
        return f"cannot import {ref!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return None if callable(func) else f"{ref!r} is not a function"
