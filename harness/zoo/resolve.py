"""Turn a suite's model reference into a ``SourceModel`` (train, load or import as needed).

Heavy imports (torch, scikit-learn) happen inside the functions, so importing
``harness.zoo`` stays cheap for config validation and the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.hashing import content_key, sha256_file
from harness.zoo.registry import MODELS, import_ref
from harness.zoo.source import SourceModel

if TYPE_CHECKING:
    from harness.config.suite import BuiltinModel, FactoryModel, OnnxModel, TfliteModel
    from harness.variants.cache import ArtifactCache


def resolve_model(ref: "BuiltinModel | OnnxModel | FactoryModel | TfliteModel", cache: "ArtifactCache") -> SourceModel:
    """The source of every variant of ``ref``; built-ins are trained or initialised once."""
    from harness.config.suite import BuiltinModel, FactoryModel, OnnxModel, TfliteModel

    if isinstance(ref, BuiltinModel):
        return _builtin(ref.builtin, ref.label, cache)
    if isinstance(ref, OnnxModel):
        return _onnx(ref, cache)
    if isinstance(ref, FactoryModel):
        return _factory(ref, cache)
    if isinstance(ref, TfliteModel):
        return _tflite(ref, cache)
    raise ConfigError(f"not a model reference: {ref!r}")


def _builtin(builtin: str, label: str, cache: "ArtifactCache") -> SourceModel:
    from harness.zoo import weights
    from harness.zoo.digits import ensure_digits

    if builtin not in MODELS:
        raise ConfigError(f"unknown built-in model {builtin!r}; known: {', '.join(sorted(MODELS))}")
    entry = MODELS[builtin]
    data_dir: Path | None = None
    data_meta: dict[str, Any] = {}
    if entry.dataset == "digits":
        data_dir, data_meta = ensure_digits(cache)
    if entry.trained:
        if data_dir is None:
            raise ConfigError(f"built-in {builtin!r} is trained but names no dataset")
        model_dir, meta, cached = weights.trained_weights(entry, cache, data_dir, data_meta)
    else:
        model_dir, meta, cached = weights.random_weights(entry, cache)

    def split(name: str) -> Path | None:
        return None if data_dir is None else data_dir / f"{name}.npz"

    return SourceModel(
        name=label,
        input_shape=tuple(entry.input_shape),
        content_hash=meta["key"],
        torch_state=model_dir / weights.STATE_FILE,
        eval_path=split("test"),
        calib_path=split("calib"),
        train_path=split("train"),
        num_classes=entry.num_classes,
        meta={**{k: meta.get(k) for k in ("fp32_accuracy", "train_s", "build_s")}, "cached": cached,
              "data_split_hash": data_meta.get("split_hash")},
        builder=entry.builder,
        kind="builtin",
        synthetic_data=data_dir is None,
    )


def _onnx(ref: "OnnxModel", cache: "ArtifactCache") -> SourceModel:
    path = Path(ref.onnx)
    if not path.is_file():
        raise ConfigError(f"ONNX file not found: {path}", field="onnx")
    shape, shapes = _shapes(ref.input_shape)
    data, data_hash = _data_splits(ref, cache)
    return SourceModel(
        name=ref.label,
        input_shape=shape,
        content_hash=sha256_file(path),
        onnx_path=path,
        eval_path=_host_eval(ref, cache),
        calib_path=data.get("calib"),
        kind="onnx",
        input_shapes=shapes,
        data_hash=data_hash,
    )


def _data_splits(ref: Any, cache: "ArtifactCache") -> tuple[dict[str, Path], str | None]:
    """The suite's ``calib:`` and ``train:`` data as npz files (images prepared once, cached),
    and a hash of their content; ({}, None) without either."""
    from harness.tasks.data import prepare_data
    from harness.tasks.plan import image_shape

    paths: dict[str, Path] = {}
    for split in ("calib", "train"):
        src = getattr(ref, split, None)
        if src is not None:
            paths[split] = prepare_data(src, image_shape(ref), cache)
    if not paths:
        return {}, None
    return paths, content_key({split: sha256_file(p) for split, p in sorted(paths.items())})


def _shapes(value: Any) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]] | None]:
    """A suite's ``input_shape`` (a shape, or ``{input_name: shape}``) as the first input's
    shape and the mapping (None for a plain shape)."""
    if isinstance(value, dict):
        shapes = {str(k): tuple(int(d) for d in v) for k, v in value.items()}
        return next(iter(shapes.values())), shapes
    return tuple(value), None


def _tflite(ref: "TfliteModel", cache: "ArtifactCache") -> SourceModel:
    from harness.variants.tflite_file import input_shapes

    path = Path(ref.tflite)
    if not path.is_file():
        raise ConfigError(f".tflite file not found: {path}", field="tflite")
    shapes = input_shapes(path)
    if len(shapes) != 1:
        raise ConfigError(f"{path}: the agent feeds models with one input; this one has {len(shapes)}", field="tflite")
    data, data_hash = _data_splits(ref, cache)
    return SourceModel(
        name=ref.label,
        input_shape=tuple(ref.input_shape or shapes[0]),
        content_hash=sha256_file(path),
        tflite_path=path,
        eval_path=_host_eval(ref, cache),
        calib_path=data.get("calib"),
        kind="tflite",
        data_hash=data_hash,
    )


def _factory(ref: "FactoryModel", cache: "ArtifactCache") -> SourceModel:
    from torch import nn

    from harness.zoo.weights import save_module_weights

    try:
        func = import_ref(ref.factory)
    except Exception as exc:  # ImportError, AttributeError, errors raised by the module itself
        raise ConfigError(f"cannot import factory {ref.factory!r}: {type(exc).__name__}: {exc}", field="factory") from exc
    try:
        module = func()
    except Exception as exc:
        raise ConfigError(f"factory {ref.factory!r} failed: {type(exc).__name__}: {exc}", field="factory") from exc
    if not isinstance(module, nn.Module):
        raise ConfigError(f"factory {ref.factory!r} returned {type(module).__name__}, not a torch.nn.Module", field="factory")
    model_dir, meta, digest = save_module_weights(module, ref.factory, cache)
    splits, data_hash = _user_dataset(ref.dataset, cache) if ref.dataset else ({}, None)
    given, given_hash = _data_splits(ref, cache)
    shape, shapes = _shapes(ref.input_shape)
    return SourceModel(
        name=ref.label,
        input_shape=shape,
        input_shapes=shapes,
        # Fine-tuning recipes learn from the data, so it is part of what the model is.
        content_hash=digest if data_hash is None else content_key([digest, data_hash]),
        torch_state=model_dir / "state.pt",
        eval_path=_host_eval(ref, cache, splits.get("test")),
        calib_path=given.get("calib") or splits.get("calib"),
        train_path=given.get("train") or splits.get("train"),
        meta={"factory": ref.factory, "dataset": ref.dataset},
        builder=ref.factory,
        kind="factory",
        synthetic_data=ref.synthetic_data,
        data_hash=given_hash,
    )


def _host_eval(ref: Any, cache: "ArtifactCache", fallback: Path | None = None) -> Path | None:
    """The eval npz (prepared from image files when the suite names them) for the host's
    quality check and the board's accuracy; a detection or segmentation set is the task's
    alone (``harness.tasks.plan``), so none here."""
    from harness.tasks.plan import host_eval

    task = getattr(ref, "task", None)
    if task is not None and task.kind != "classification":
        return None
    return host_eval(ref, cache) or fallback


def _user_dataset(ref: str, cache: "ArtifactCache") -> tuple[dict[str, Path], str]:
    """Call a user's dataset factory; write its splits as npz files, cached by content."""
    import hashlib

    import numpy as np

    try:
        splits = import_ref(ref)()
    except Exception as exc:
        raise ConfigError(f"dataset {ref!r} failed: {type(exc).__name__}: {exc}", field="dataset") from exc
    if not isinstance(splits, dict) or not splits or not set(splits) <= {"train", "calib", "test"}:
        raise ConfigError(f"dataset {ref!r} must return a dict with some of 'train', 'calib', 'test'", field="dataset")
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    h = hashlib.sha256()
    for name in sorted(splits):
        try:
            x, y = (np.ascontiguousarray(a) for a in splits[name])
        except (TypeError, ValueError):
            raise ConfigError(f"dataset {ref!r}: split {name!r} must be an (x, y) pair of arrays", field="dataset") from None
        x, y = x.astype(np.float32), y.astype(np.int64)
        if len(x) != len(y):
            raise ConfigError(f"dataset {ref!r}: split {name!r} has {len(x)} inputs but {len(y)} labels", field="dataset")
        arrays[name] = (x, y)
        for a in (x, y):
            h.update(f"{name}:{a.dtype}:{a.shape}".encode())
            h.update(a.tobytes())
    data_hash = h.hexdigest()

    def write(out: Path) -> dict[str, Any]:
        for name, (x, y) in arrays.items():
            np.savez(out / f"{name}.npz", x=x, y=y)
        return {"dataset": ref, "sizes": {k: len(v[1]) for k, v in arrays.items()}}

    directory, _, _ = cache.get_or_build("data", {"dataset": ref, "hash": data_hash}, write)
    return {name: directory / f"{name}.npz" for name in arrays}, data_hash
