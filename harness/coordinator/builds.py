"""Model resolution and variant builds as parallel Ray tasks.

Builds run before any measurement starts: on the coordinator's own machine a build
running beside a timed window would measure the build, not the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import ModelRef
from harness.variants import ArtifactCache, Variant


@dataclass(frozen=True)
class Built:
    variant: Variant
    record: dict[str, Any]  # what the store keeps: sizes, MACs, sparsity, host quality, ...


@dataclass(frozen=True)
class BuildOutcome:
    variants: dict[tuple[str, str], Built]  # (model, chain) -> built variant
    failures: dict[tuple[str, str], str]  # (model, chain) -> reason


def _resolve(ref: ModelRef, cache_root: str):  # noqa: ANN202 - runs in a Ray worker
    from harness.zoo import resolve_model

    return resolve_model(ref, ArtifactCache(Path(cache_root)))


def _build(source, chain: str, cache_root: str, custom: dict) -> Built:  # noqa: ANN001
    """Build one variant and score it on the host against the model's fp32 variant."""
    from harness.errors import VariantBuildError
    from harness.variants import build_variant
    from harness.variants.quality import cached_quality, variant_record

    cache = ArtifactCache(Path(cache_root))
    variant = build_variant(source, chain, cache, custom)
    try:
        reference = variant if chain == "fp32" else build_variant(source, "fp32", cache)
    except VariantBuildError:
        reference = None  # the variant stands; it just has nothing to be compared with
    return Built(variant, variant_record(variant, cached_quality(variant, reference)))


def build_all(models: Iterable[ModelRef], chains: Iterable[str], cache_root: Path,
              custom: dict[str, dict[str, Any]] | None = None) -> BuildOutcome:
    """Resolve every model, then build every (model, chain), in parallel, failures collected."""
    import ray

    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # Artifacts land in this node's cache, where the coordinator (and its file server) read them.
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    resolve = ray.remote(num_cpus=1, max_retries=0, scheduling_strategy=here)(_resolve)
    build = ray.remote(num_cpus=1, max_retries=0, scheduling_strategy=here)(_build)
    chains = list(chains)
    refs = {}
    for model in models:
        source = resolve.remote(model, str(cache_root))
        for chain in chains:
            refs[(model.label, chain)] = build.remote(source, chain, str(cache_root), custom or {})
    variants: dict[tuple[str, str], Built] = {}
    failures: dict[tuple[str, str], str] = {}
    for key, ref in refs.items():
        try:
            variants[key] = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a failed build is a stored failure, not a crash
            failures[key] = _reason(e)
    return BuildOutcome(variants, failures)


def _reason(exc: BaseException) -> str:
    """The original error inside Ray's wrapper, as one line."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
