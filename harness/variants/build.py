"""Build a variant (a chain of recipes applied to a source model) into the artifact cache.

A chain is "torch-stage recipes, export to ONNX, onnx-stage recipes", or "torch-stage
recipes, one tflite-stage recipe" (converted straight from the module). The variant_id is
the cache key: it hashes the source's content hash, each step's name, params and tool
versions, and the export settings, so equal inputs give equal ids on any machine and a
rebuild happens only when something that changes the bytes changes.

Before each onnx-stage step the builder checks its input graph: a step that needs float32
(every recipe but ``as-is``) refuses a graph already quantized or in float16
(``precision.py``); a graph older than the step's ``opset_needed()`` is converted with the
ONNX version converter first, recorded in the variant's ``notes`` (and the ONNX artifact's
``metadata_props``, ``edge_harness.opset_converted``), or the step is refused with the
converter's reason. An ONNX file a step makes must load in ONNX Runtime (when ORT may run
it), or the step fails rather than caching a graph no runtime can read. Every failure is a
``VariantBuildError`` of one line (the full text in its ``detail``).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, VariantBuildError
from harness.variants.base import Recipe
from harness.variants.cache import ArtifactCache, sha256_file
from harness.variants.feeds import GraphInput

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

MODEL_FILE = "model.onnx"
SCHEMA = "4"  # bump when the build procedure changes in a way the key does not capture (4: notes say synthetic data)
METADATA_PREFIX = "edge_harness."  # notes go into the ONNX artifact's metadata_props under this prefix


@dataclass(frozen=True)
class Variant:
    """A built, cached ONNX artifact and what planning and reports need to know about it."""

    model: str
    chain: str
    variant_id: str
    path: Path
    sha256: str
    size_bytes: int
    params: int
    macs: int
    precision: str
    opset: int | None
    tool_versions: dict[str, str] = field(hash=False, compare=False)
    build_s: float
    cached: bool
    runtimes: frozenset[str] | None
    input_shape: tuple[int, ...]
    eval_path: Path | None
    sparsity: float = 0.0  # exactly-zero fraction of Conv/Gemm/MatMul weights (onnx_stats)
    format: str = "onnx"  # or "openvino-ir": ``path`` is the graph, ``weights_path`` the weights
    weights_path: Path | None = None
    # What the build did that the chain does not say, e.g. {"opset_converted": "11 -> 13 (int8-static)"}.
    notes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    # Every input's shape when the suite named them ({input_name: shape}); ``input_shape`` is the first's.
    input_shapes: dict[str, tuple[int, ...]] | None = field(default=None, hash=False, compare=False)
    # Every input of the ONNX graph, in its order, as it is fed (``feeds.GraphInput``: name, dtype,
    # resolved shape), read at build time; None for a .tflite artifact. The agent's spec sends them.
    inputs: tuple[GraphInput, ...] | None = field(default=None, hash=False, compare=False)


def split_chain(chain: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    steps = tuple(re.split(r"\s*>\s*", chain.strip())) if isinstance(chain, str) else tuple(chain)
    if not any(steps):
        raise ConfigError("empty variant chain")
    if not all(steps):  # "fp32 > ", "a >> b": a step left out is a mistake, not a shorter chain
        raise ConfigError(f"variant chain {chain!r} has an empty step")
    return steps


def make_recipes(steps: tuple[str, ...], custom: Mapping[str, Mapping[str, Any]] | None = None) -> list[Recipe]:
    """Recipe instances for chain steps: registry presets, or the suite's own ``recipes``
    (``{name: {kind: <registry name>, <option>: <value>}}``)."""
    from harness.variants import RECIPES

    custom = custom or {}
    out = []
    for step in steps:
        if step not in custom and step not in RECIPES:
            raise ConfigError(f"unknown recipe {step!r}; known: {', '.join(sorted({*RECIPES, *custom}))}")
        try:
            out.append(make_recipe(step, custom.get(step) or {"kind": step}))
        except ConfigError as e:
            raise ConfigError(f"recipe {step!r}: {e}") from None
    return out


def make_recipe(label: str, definition: Mapping[str, Any]) -> Recipe:
    """One recipe from ``{kind: <registry name>, <option>: <value>, ...}``."""
    from pydantic import ValidationError

    from harness.variants import RECIPES

    options = dict(definition)
    kind = options.pop("kind", None)
    if kind not in RECIPES:
        raise ConfigError(f"unknown kind {kind!r}; known: {', '.join(sorted(RECIPES))}")
    try:
        return RECIPES[kind].make(label, options)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        raise ConfigError(f"option {'.'.join(map(str, first['loc']))!r}: {first['msg']}") from None


def check_chain(recipes: list[Recipe], source: "SourceModel") -> None:
    """Reject orders that cannot be built, before any work is done."""
    seen_onnx = None
    for i, r in enumerate(recipes):
        if r.artifact_format != "onnx" and i != len(recipes) - 1:
            raise VariantBuildError(f"{r.label}: makes a {r.artifact_format} artifact, so it must be the chain's last step")
        if r.stage == "onnx":
            seen_onnx = seen_onnx or r.label
        elif r.stage in ("torch", "tflite"):
            if seen_onnx:
                raise VariantBuildError(f"{r.label}: works on the torch model, so it cannot follow the onnx-stage "
                                        f"recipe {seen_onnx!r}")
        else:
            raise VariantBuildError(f"{r.label}: unknown stage {r.stage!r}")
    problem = source_problem(recipes, source_kind(source), source.name)
    if problem:
        raise VariantBuildError(problem)
    shapes = getattr(source, "input_shapes", None) or {}
    single = next((r for r in recipes if r.stage in ("torch", "tflite")), None)
    if len(shapes) > 1 and single is not None:
        from harness.errors import name_list

        raise VariantBuildError(f"{single.label}: works on one-input torch models; {source.name} has "
                                f"{name_list(list(shapes))}")
    trainer = next((r for r in recipes if r.trains()), None)
    if trainer is not None and source.train_path is None and not source.synthetic_data:
        from harness.variants.finetune import no_train_data

        raise VariantBuildError(f"{trainer.label}: {no_train_data(source)}")


def source_kind(source: "SourceModel") -> str:
    """"torch" (built-in and factory models), "onnx" or "tflite": what recipes can start from."""
    return "torch" if source.has_torch else source.kind


def source_problem(recipes: list[Recipe], kind: str, model: str) -> str | None:
    """Why ``recipes`` cannot be built from model ``model`` of ``kind``, or None; the suite
    checks this when it is loaded, so a sweep never starts on an impossible pair."""
    for r in recipes:
        if r.stage == "torch" and kind != "torch":
            return f"{r.label}: needs a torch model, but {model} is {'ONNX-only' if kind == 'onnx' else 'a .tflite file'}"
        if r.stage == "tflite" and kind == "onnx":
            return (f"{r.label}: converting to TFLite needs the torch model, but {model} is ONNX-only; give it as a "
                    "builtin or factory model, or give the .tflite file itself as the model ('tflite: path')")
        if r.stage == "onnx" and kind == "tflite":
            return (f"{r.label}: works on ONNX graphs, but {model} is a .tflite file; its variants are the tflite-* "
                    "recipes (tflite-as-is measures it as it is)")
    return None


def chain_format(recipes: list[Recipe]) -> str:
    """The artifact format the chain ends in: what a runtime must read to run it."""
    return recipes[-1].artifact_format if recipes else "onnx"


def chain_runtimes(recipes: list[Recipe]) -> frozenset[str] | None:
    """Runtimes every step's output can run on: the intersection; None = any."""
    out: frozenset[str] | None = None
    for r in recipes:
        if r.runtimes is not None:
            out = r.runtimes if out is None else out & r.runtimes
    return out


def chain_precision(recipes: list[Recipe]) -> str:
    return next((r.precision for r in reversed(recipes) if r.precision), "fp32")


def tool_versions(recipes: list[Recipe], source: "SourceModel") -> dict[str, str]:
    import onnx

    from harness.variants.export import export_versions

    versions = {"onnx": onnx.__version__}
    if source.has_torch:
        versions.update(export_versions())
    for r in recipes:
        versions.update(r.tool_versions())
    return versions


def build_variant(source: "SourceModel", chain: str | tuple[str, ...], cache: ArtifactCache,
                  custom: Mapping[str, Mapping[str, Any]] | None = None) -> Variant:
    """Build (or load from ``cache``) the variant ``chain`` of ``source``; ``custom`` holds
    the suite's own recipe definitions."""
    steps = split_chain(chain)
    recipes = make_recipes(steps, custom)
    check_chain(recipes, source)
    versions = tool_versions(recipes, source)
    shapes = getattr(source, "input_shapes", None) or None
    material = {
        "schema": SCHEMA,
        "source": source.content_hash,
        "input_shape": list(source.input_shape),
        "steps": [{"name": r.name, "revision": r.revision, "params": r.params()} for r in recipes],
        "tool_versions": versions,
    }
    if shapes:
        material["input_shapes"] = {k: list(v) for k, v in shapes.items()}
    if source.data_hash:
        material["data"] = source.data_hash
    directory, meta, cached = cache.get_or_build("variant", material, lambda d: _build(d, source, recipes))
    return Variant(
        model=source.name,
        chain=" > ".join(steps),
        variant_id=meta["key"],
        path=directory / meta["file"],
        sha256=meta["sha256"],
        size_bytes=meta["size_bytes"],
        params=meta["params"],
        macs=meta["macs"],
        precision=meta.get("precision") or chain_precision(recipes),
        opset=meta["opset"],
        tool_versions=versions,
        build_s=float(meta["build_s"]),
        cached=cached,
        runtimes=chain_runtimes(recipes),
        input_shape=tuple(meta.get("input_shape") or source.input_shape),
        eval_path=source.eval_path,
        sparsity=float(meta["sparsity"]),
        format=meta["format"],
        weights_path=directory / meta["weights"] if meta.get("weights") else None,
        notes=dict(meta.get("notes") or {}),
        input_shapes={k: tuple(v) for k, v in shapes.items()} if shapes else None,
        inputs=_recorded_inputs(meta, directory / meta["file"], source),
    )


def _build(directory: Path, source: "SourceModel", recipes: list[Recipe]) -> dict[str, Any]:
    from harness.variants.onnx_stats import onnx_stats
    from harness.variants.tflite_file import tflite_stats

    from harness.variants.precision import onnx_precision, tflite_precision

    t0 = time.perf_counter()
    work = directory / "work"
    work.mkdir()
    notes: dict[str, str] = {}
    torch_steps = [r for r in recipes if r.stage == "torch"]  # a prefix of the chain (check_chain)
    current: Any = source.load_module() if source.has_torch else None
    for i, r in enumerate(torch_steps):
        current = _run(r, current, work / f"{i:02d}-{r.name}", source, notes)
    fmt = chain_format(recipes)
    last_onnx = None
    if fmt == "tflite":  # one tflite step, last: from the module, or from the user's .tflite
        r = recipes[-1]
        path = _run(r, current if current is not None else source.tflite_path, work / f"{len(recipes) - 1:02d}-{r.name}",
                    source, notes)
    else:
        path = last_onnx = _source_onnx(current, source, work)
        for i, r in enumerate(recipes[len(torch_steps):], start=len(torch_steps)):
            path = _run(r, path, work / f"{i:02d}-{r.name}", source, notes)
            if r.artifact_format == "onnx":
                last_onnx = path
    files = _store_artifact(path, fmt, directory, notes)
    # A non-ONNX artifact (OpenVINO IR) ends a chain; its graph statistics are those of the
    # ONNX graph it was made from (quantization keeps the topology).
    if fmt == "tflite":
        stats = tflite_stats(directory / files["file"])
    else:
        stats = onnx_stats(directory / files["file"] if fmt == "onnx" else last_onnx)
    # The shape the graph is fed in, where it differs from the suite's (an NHWC graph given NCHW).
    shape, inputs = _graph_inputs(last_onnx or directory / files["file"], source) if fmt != "tflite" else (None, None)
    # A chain that measures the model as it is records the precision it has, not "fp32".
    precision = None
    if recipes[-1].any_precision:
        final = directory / files["file"]
        precision = (tflite_precision(final) if fmt == "tflite" else onnx_precision(last_onnx or final)).precision
    shutil.rmtree(work, ignore_errors=True)
    size = sum((directory / f).stat().st_size for f in (files["file"], files.get("weights")) if f)
    return {**stats, **files, "format": fmt, "sha256": sha256_file(directory / files["file"]), "size_bytes": size,
            "build_s": round(time.perf_counter() - t0, 3), "model": source.name,
            "chain": " > ".join(r.label for r in recipes), "notes": notes, "precision": precision,
            "input_shape": shape, "inputs": inputs}


def _graph_inputs(path: Path, source: "SourceModel") -> tuple[list[int] | None, list[dict[str, Any]] | None]:
    """Every input of the graph at ``path`` as it is fed (``feeds.source_inputs``: name, dtype,
    resolved shape), and the first input's shape where it differs from ``source.input_shape``
    (None when equal); (None, None) when not resolvable."""
    from harness.variants.feeds import source_inputs

    try:
        inputs = source_inputs(path, source)
    except Exception:  # noqa: BLE001 - the suite's shape stands; the runtime will say what does not fit
        return None, None
    named = getattr(source, "input_shapes", None)
    first = next((g for g in inputs if named and g.name == next(iter(named))), inputs[0] if inputs else None)
    shape = None if first is None or tuple(first.shape) == tuple(source.input_shape) else list(first.shape)
    return shape, [{"name": g.name, "dtype": g.dtype, "shape": list(g.shape), "graph_shape": list(g.graph_shape)}
                   for g in inputs]


def _recorded_inputs(meta: dict[str, Any], path: Path, source: "SourceModel") -> tuple[GraphInput, ...] | None:
    """The inputs ``_build`` recorded; an ONNX variant built before they were is read now."""
    raw = meta.get("inputs")
    if raw is None and "inputs" not in meta and meta.get("format") == "onnx":
        raw = _graph_inputs(path, source)[1]
    if not raw:
        return None
    return tuple(GraphInput(i["name"], i["dtype"], tuple(i["shape"]), tuple(i["graph_shape"])) for i in raw)


def _source_onnx(module: Any, source: "SourceModel", work: Path) -> Path:
    """The ONNX graph the onnx-stage steps start from: the exported module, or the user's file."""
    if module is not None:
        return _export(module, source, work / "exported.onnx")
    if source.onnx_path is None:
        raise VariantBuildError(f"{source.name}: has neither torch weights nor an ONNX file")
    return Path(source.onnx_path)


def _store_artifact(path: Path, fmt: str, directory: Path,
                    notes: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Move the final artifact into the variant directory under fixed names (an ONNX file
    gets the build's ``notes`` in its metadata_props)."""
    if fmt == "onnx":
        _self_contained_copy(path, directory / MODEL_FILE)
        if notes:
            from harness.variants.int8_static import set_metadata

            set_metadata(directory / MODEL_FILE, {METADATA_PREFIX + k: v for k, v in notes.items()})
        return {"file": MODEL_FILE, "weights": None}
    if fmt == "openvino-ir":
        shutil.copyfile(path, directory / "model.xml")
        shutil.copyfile(path.with_suffix(".bin"), directory / "model.bin")
        return {"file": "model.xml", "weights": "model.bin"}
    if fmt == "tflite":
        shutil.copyfile(path, directory / "model.tflite")
        return {"file": "model.tflite", "weights": None}
    raise VariantBuildError(f"unknown artifact format {fmt!r}")


def _run(recipe: Recipe, inp: Any, workdir: Path, source: "SourceModel", notes: dict[str, str] | None = None) -> Any:
    """Run one step; every failure becomes ``VariantBuildError("<recipe>: <reason>")`` (one
    line; the full text in ``detail``). Onnx-stage steps get their input checked first
    (precision, opset) and their ONNX output loaded in ONNX Runtime."""
    workdir.mkdir()
    try:
        if recipe.stage != "torch" and isinstance(inp, (str, Path)):
            _check_precision(recipe, Path(inp))
        if recipe.stage == "onnx":
            inp = _at_opset(recipe, Path(inp), workdir.with_name(workdir.name + "-opset"), notes)
        out = recipe.apply(inp, workdir, source)
        if notes is not None:
            notes.update(recipe.notes)
        if (recipe.stage == "onnx" and recipe.artifact_format == "onnx" and isinstance(out, (str, Path))
                and Path(out) != Path(inp) and Path(out).is_file()
                and (recipe.runtimes is None or "onnxruntime" in recipe.runtimes)):
            _check_loads(Path(out))
    except VariantBuildError as exc:
        msg = str(exc)
        raise VariantBuildError(msg if msg.startswith(f"{recipe.label}: ") else f"{recipe.label}: {msg}",
                                detail=exc.detail) from exc
    except Exception as exc:
        text = f"{recipe.label}: {type(exc).__name__}: {exc}"
        raise VariantBuildError(text, detail=text) from exc
    if recipe.stage != "torch" and not (isinstance(out, (str, Path)) and Path(out).is_file()):
        raise VariantBuildError(f"{recipe.label}: did not produce an artifact file (got {out!r})")
    if recipe.stage == "torch":
        from torch import nn

        if not isinstance(out, nn.Module):
            raise VariantBuildError(f"{recipe.label}: did not return a torch module (got {type(out).__name__})")
    return out if recipe.stage == "torch" else Path(out)


def _check_precision(recipe: Recipe, path: Path) -> None:
    """``VariantBuildError`` when ``recipe`` needs float32 and the model at ``path`` is not."""
    if recipe.any_precision:
        return
    from harness.variants.precision import onnx_precision, refusal, tflite_precision

    tflite = path.suffix == ".tflite"
    found = tflite_precision(path) if tflite else onnx_precision(path)
    if not found.is_float32:
        raise VariantBuildError(f"{recipe.label}: {refusal(recipe.label, found, tflite, recipe.precision)}")


def _opset(model: Any) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _at_opset(recipe: Recipe, path: Path, workdir: Path, notes: dict[str, str] | None) -> Path:
    """``path``, or the graph converted up to the opset ``recipe`` needs (noted in ``notes``).
    Weights an old exporter also listed as graph inputs (IR < 4) stop being inputs: a quantizer
    would keep them as inputs to feed, and their values would be neither folded nor quantized."""
    need = recipe.opset_needed()
    if need is None:
        return path
    import onnx

    have = _opset(onnx.load(str(path), load_external_data=False))
    if have is None or have >= need:
        return path
    from onnx.version_converter import convert_version

    try:
        model = onnx.load(str(path))
        weights = {init.name for init in model.graph.initializer}
        kept = [i for i in model.graph.input if i.name not in weights]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        model.ir_version = max(model.ir_version, 4)
        converted = convert_version(model, need)
        onnx.checker.check_model(converted)
    except Exception as exc:
        text = (f"needs opset >= {need}, and the ONNX version converter cannot convert this opset-{have} model: "
                f"{type(exc).__name__}: {exc}")
        raise VariantBuildError(text, detail=text) from exc
    workdir.mkdir(exist_ok=True)
    out = workdir / f"opset{need}.onnx"
    onnx.save(converted, str(out))
    if notes is not None:
        notes["opset_converted"] = f"{have} -> {need} ({recipe.label})"
    return out


def _check_loads(path: Path) -> None:
    """``VariantBuildError`` unless ONNX Runtime (CPU) can load the file a step made."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        text = f"ONNX Runtime cannot load the graph made: {type(exc).__name__}: {exc}"
        raise VariantBuildError(text, detail=text) from exc


def _export(module: Any, source: "SourceModel", path: Path) -> Path:
    from harness.variants.export import export_onnx

    shapes = getattr(source, "input_shapes", None) or tuple(source.input_shape)
    try:
        return export_onnx(module, shapes, path)
    except Exception as exc:
        text = f"export: torch.onnx.export failed for {source.name}: {type(exc).__name__}: {exc}"
        raise VariantBuildError(text, detail=text) from exc


def _self_contained_copy(src: Path, dst: Path) -> None:
    """Copy bytes as they are unless weights live in external files; then inline them."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    if not external:
        shutil.copyfile(src, dst)
        return
    model = onnx.load(str(src))
    onnx.save(model, str(dst), save_as_external_data=False)
