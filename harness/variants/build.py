"""Build a variant (a chain of recipes applied to a source model) into the artifact cache.

A chain is "torch-stage recipes, export to ONNX, onnx-stage recipes", or "torch-stage
recipes, one tflite-stage recipe" (converted straight from the module). The variant_id is
the cache key: it hashes the source's content hash, each step's name, params and tool
versions, and the export settings, so equal inputs give equal ids on any machine and a
rebuild happens only when something that changes the bytes changes.
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

if TYPE_CHECKING:
    from harness.zoo.source import SourceModel

MODEL_FILE = "model.onnx"
SCHEMA = "2"  # bump when the build procedure changes in a way the key does not capture


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


def split_chain(chain: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    steps = tuple(s for s in re.split(r"\s*>\s*", chain.strip()) if s) if isinstance(chain, str) else tuple(chain)
    if not steps:
        raise ConfigError("empty variant chain")
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
                    "recipes (tflite-fp32 measures it as it is)")
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
    material = {
        "schema": SCHEMA,
        "source": source.content_hash,
        "input_shape": list(source.input_shape),
        "steps": [{"name": r.name, "revision": r.revision, "params": r.params()} for r in recipes],
        "tool_versions": versions,
    }
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
        precision=chain_precision(recipes),
        opset=meta["opset"],
        tool_versions=versions,
        build_s=float(meta["build_s"]),
        cached=cached,
        runtimes=chain_runtimes(recipes),
        input_shape=tuple(source.input_shape),
        eval_path=source.eval_path,
        sparsity=float(meta["sparsity"]),
        format=meta["format"],
        weights_path=directory / meta["weights"] if meta.get("weights") else None,
    )


def _build(directory: Path, source: "SourceModel", recipes: list[Recipe]) -> dict[str, Any]:
    from harness.variants.onnx_stats import onnx_stats
    from harness.variants.tflite_file import tflite_stats

    t0 = time.perf_counter()
    work = directory / "work"
    work.mkdir()
    torch_steps = [r for r in recipes if r.stage == "torch"]  # a prefix of the chain (check_chain)
    current: Any = source.load_module() if source.has_torch else None
    for i, r in enumerate(torch_steps):
        current = _run(r, current, work / f"{i:02d}-{r.name}", source)
    fmt = chain_format(recipes)
    last_onnx = None
    if fmt == "tflite":  # one tflite step, last: from the module, or from the user's .tflite
        r = recipes[-1]
        path = _run(r, current if current is not None else source.tflite_path, work / f"{len(recipes) - 1:02d}-{r.name}",
                    source)
    else:
        path = last_onnx = _source_onnx(current, source, work)
        for i, r in enumerate(recipes[len(torch_steps):], start=len(torch_steps)):
            path = _run(r, path, work / f"{i:02d}-{r.name}", source)
            if r.artifact_format == "onnx":
                last_onnx = path
    files = _store_artifact(path, fmt, directory)
    # A non-ONNX artifact (OpenVINO IR) ends a chain; its graph statistics are those of the
    # ONNX graph it was made from (quantization keeps the topology).
    if fmt == "tflite":
        stats = tflite_stats(directory / files["file"])
    else:
        stats = onnx_stats(directory / files["file"] if fmt == "onnx" else last_onnx)
    shutil.rmtree(work, ignore_errors=True)
    size = sum((directory / f).stat().st_size for f in (files["file"], files.get("weights")) if f)
    return {**stats, **files, "format": fmt, "sha256": sha256_file(directory / files["file"]), "size_bytes": size,
            "build_s": round(time.perf_counter() - t0, 3), "model": source.name,
            "chain": " > ".join(r.label for r in recipes)}


def _source_onnx(module: Any, source: "SourceModel", work: Path) -> Path:
    """The ONNX graph the onnx-stage steps start from: the exported module, or the user's file."""
    if module is not None:
        return _export(module, source, work / "exported.onnx")
    if source.onnx_path is None:
        raise VariantBuildError(f"{source.name}: has neither torch weights nor an ONNX file")
    return Path(source.onnx_path)


def _store_artifact(path: Path, fmt: str, directory: Path) -> dict[str, str | None]:
    """Move the final artifact into the variant directory under fixed names."""
    if fmt == "onnx":
        _self_contained_copy(path, directory / MODEL_FILE)
        return {"file": MODEL_FILE, "weights": None}
    if fmt == "openvino-ir":
        shutil.copyfile(path, directory / "model.xml")
        shutil.copyfile(path.with_suffix(".bin"), directory / "model.bin")
        return {"file": "model.xml", "weights": "model.bin"}
    if fmt == "tflite":
        shutil.copyfile(path, directory / "model.tflite")
        return {"file": "model.tflite", "weights": None}
    raise VariantBuildError(f"unknown artifact format {fmt!r}")


def _run(recipe: Recipe, inp: Any, workdir: Path, source: "SourceModel") -> Any:
    """Run one step; every failure becomes ``VariantBuildError("<recipe>: <reason>")``."""
    workdir.mkdir()
    try:
        out = recipe.apply(inp, workdir, source)
    except VariantBuildError as exc:
        msg = str(exc)
        raise VariantBuildError(msg if msg.startswith(f"{recipe.label}: ") else f"{recipe.label}: {msg}") from exc
    except Exception as exc:
        raise VariantBuildError(f"{recipe.label}: {type(exc).__name__}: {exc}") from exc
    if recipe.stage != "torch" and not (isinstance(out, (str, Path)) and Path(out).is_file()):
        raise VariantBuildError(f"{recipe.label}: did not produce an artifact file (got {out!r})")
    if recipe.stage == "torch":
        from torch import nn

        if not isinstance(out, nn.Module):
            raise VariantBuildError(f"{recipe.label}: did not return a torch module (got {type(out).__name__})")
    return out if recipe.stage == "torch" else Path(out)


def _export(module: Any, source: "SourceModel", path: Path) -> Path:
    from harness.variants.export import export_onnx

    try:
        return export_onnx(module, tuple(source.input_shape), path)
    except Exception as exc:
        raise VariantBuildError(f"export: torch.onnx.export failed for {source.name}: {type(exc).__name__}: {exc}") from exc


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
