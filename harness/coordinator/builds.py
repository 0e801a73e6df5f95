"""Model resolution and variant builds as parallel Ray tasks.

Builds run before any measurement starts: on the coordinator's own machine a build
running beside a timed window would measure the build, not the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import ModelRef
from harness.variants import ArtifactCache, Variant

if TYPE_CHECKING:
    from harness.config.suite import Fidelity


@dataclass(frozen=True)
class Built:
    variant: Variant
    record: dict[str, Any]  # what the store keeps: sizes, MACs, sparsity, host quality, fidelity, ...
    degraded: str | None = None  # why its outputs are past the suite's fidelity limit; None: within it


@dataclass(frozen=True)
class BuildOutcome:
    variants: dict[tuple[str, str], Built]  # (model, chain) -> built variant
    failures: dict[tuple[str, str], str]  # (model, chain) -> reason


def _resolve(ref: ModelRef, cache_root: str):  # noqa: ANN202 - runs in a Ray worker
    from harness.zoo import resolve_model

    return resolve_model(ref, ArtifactCache(Path(cache_root)))


# The chains a variant's fidelity is scored against, in order: the fp32 variant, else (a model
# given already quantized or in float16, which fp32 refuses) the source model as it was given.
REFERENCE_CHAINS = ("fp32", "as-is")
TFLITE_REFERENCE_CHAINS = ("tflite-fp32", "tflite-as-is")


def reference_chains(source) -> tuple[str, ...]:  # noqa: ANN001
    """The chains every variant of ``source`` may be compared with, first that builds wins."""
    return TFLITE_REFERENCE_CHAINS if source.kind == "tflite" else REFERENCE_CHAINS


def _reference(source, chain: str, variant: Variant, cache: ArtifactCache) -> Variant | None:  # noqa: ANN001
    from harness.errors import VariantBuildError
    from harness.variants import build_variant

    for ref_chain in reference_chains(source):
        if chain == ref_chain:
            return variant
        try:
            return build_variant(source, ref_chain, cache)
        except VariantBuildError:
            continue
    return None  # the variant stands; it just has nothing to be compared with


def _build(source, chain: str, cache_root: str, custom: dict) -> Built:  # noqa: ANN001
    """Build one variant and score it on the host against the model's reference variant."""
    from harness.variants import build_variant
    from harness.variants.quality import cached_quality, variant_record

    cache = ArtifactCache(Path(cache_root))
    variant = build_variant(source, chain, cache, custom)
    reference = _reference(source, chain, variant, cache)
    return Built(variant, variant_record(variant, cached_quality(variant, reference, source.calib_path)))


def build_all(models: Iterable[ModelRef], chains: Iterable[str], cache_root: Path,
              custom: dict[str, dict[str, Any]] | None = None, fidelity: Fidelity | None = None) -> BuildOutcome:
    """Resolve every model, then build every (model, chain), in parallel, failures collected;
    each built variant is judged against ``fidelity`` (default: the default limits)."""
    from harness.config.suite import Fidelity
    from harness.variants.quality import fidelity_problem

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
            built = ray.get(ref)
            limits = (fidelity or Fidelity()).limits_for(key[0])
            variants[key] = replace(built, degraded=fidelity_problem(built.record, **limits.model_dump()))
        except Exception as e:  # noqa: BLE001 - a failed build is a stored failure, not a crash
            failures[key] = _reason(e)
    return BuildOutcome(variants, failures)


def _reason(exc: BaseException) -> str:
    """The original error inside Ray's wrapper, as one line."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
