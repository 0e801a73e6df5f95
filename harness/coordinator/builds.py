"""Model resolution and variant builds as parallel Ray tasks.

Builds run before any measurement starts: on the coordinator's own machine a build
running beside a timed window would measure the build, not the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
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
    # The variant's quality on each other runtime the sweep runs it on, with the suite's options
    # for it (``quality.reference_quality(on=...)``); {"error": ...} where the host cannot score it.
    on_runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)
    degraded_on: dict[str, str | None] = field(default_factory=dict)  # runtime judged there -> why (None: within)

    def degraded_for(self, runtime: str) -> str | None:
        """Why the variant is degraded as ``runtime`` runs it (None: within the limits)."""
        return self.degraded_on[runtime] if runtime in self.degraded_on else self.degraded


@dataclass(frozen=True)
class BuildOutcome:
    variants: dict[tuple[str, str], Built]  # (model, chain) -> built variant (``harness.axes.build_key``)
    failures: dict[tuple[str, str], str]  # (model, chain) -> reason
    # (model, chain) -> the whole text behind a reason, where the reason shortened it (the job's details keep it)
    details: dict[tuple[str, str], str] = field(default_factory=dict)


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


def _build(source, chain: str, cache_root: str, custom: dict, runtimes: tuple[str, ...] = (),  # noqa: ANN001
           options: dict[str, dict[str, Any]] | None = None, point: tuple = ()) -> Built:
    """Build one variant and score it on the host against the model's reference variant: on its
    home runtime at full precision (the stored figures), and on each other runtime of
    ``runtimes`` the host has, with the suite's ``options`` for it, as a board of this host's
    kind runs it (OpenVINO's default bf16 on a CPU with AMX can break what ONNX Runtime keeps).
    ``point``: the suite's batch and resolution axis values to build it at (``harness.axes``)."""
    from devices.agent.runtimes import get_runtime
    from harness.errors import one_line
    from harness.variants import build_variant
    from harness.variants.quality import cached_quality, home_runtime, variant_record

    from harness.axes import reshaped_source

    cache = ArtifactCache(Path(cache_root))
    source = reshaped_source(source, point)
    variant = build_variant(source, chain, cache, custom)
    reference = _reference(source, chain, variant, cache)
    record = variant_record(variant, cached_quality(variant, reference, source.calib_path))
    on: dict[str, dict[str, Any]] = {}
    for rt in dict.fromkeys(runtimes):
        if rt == home_runtime(variant) or reference is None or rt not in ("onnxruntime", "openvino", "litert"):
            continue  # TensorRT, sleep: no host check; the board's task metric is the check there
        if not get_runtime(rt).probe().get("available"):
            continue
        try:
            q = cached_quality(variant, reference, source.calib_path, on=rt, options=(options or {}).get(rt))
        except Exception as exc:  # noqa: BLE001 - the job on that runtime will say why it cannot run
            on[rt] = {"error": one_line(f"{type(exc).__name__}: {exc}")}
            continue
        on[rt] = {k: q.get(k) for k in ("cosine", "snr_db", "max_abs_err", "fidelity")}
    return Built(variant, record, on_runtimes=on)


def build_all(models: Iterable[ModelRef], chains: Iterable[str], cache_root: Path,
              custom: dict[str, dict[str, Any]] | None = None, fidelity: Fidelity | None = None,
              runtimes: dict[tuple[str, str], tuple[str, ...]] | None = None,
              options: dict[str, dict[str, Any]] | None = None, points: Iterable[tuple] = ((),)) -> BuildOutcome:
    """Resolve every model, then build every (model, chain), in parallel, failures collected;
    each built variant is judged against ``fidelity`` (default: the default limits). ``points``:
    the shapes to build each at (``harness.axes.shape_point``; () is the model's own), keyed
    ``harness.axes.build_key``: (model, chain) for its own shape."""
    from harness.config.suite import Fidelity

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
            for point in points:
                refs[(model.label, chain, *point)] = build.remote(
                    source, chain, str(cache_root), custom or {}, tuple((runtimes or {}).get((model.label, chain), ())),
                    options, tuple(point))
    variants: dict[tuple[str, str], Built] = {}
    failures: dict[tuple[str, str], str] = {}
    details: dict[tuple[str, str], str] = {}
    for key, ref in refs.items():
        try:
            built = ray.get(ref)
            variants[key] = judged(built, (fidelity or Fidelity()).limits_for(key[0]).model_dump())
        except Exception as e:  # noqa: BLE001 - a failed build is a stored failure, not a crash
            failures[key] = _reason(e)
            detail = getattr(getattr(e, "cause", None) or e, "detail", None)
            if detail and detail != failures[key]:
                details[key] = str(detail)
    return BuildOutcome(variants, failures, details)


def judged(built: Built, limits: dict[str, Any]) -> Built:
    """``built`` with its degraded marks under ``limits`` (``FidelityLimits``' fields): on its home
    runtime, and on each other runtime it was scored on ("on openvino (as the sweep runs it): ...")."""
    from harness.variants.quality import fidelity_problem

    on = {}
    for rt, q in built.on_runtimes.items():
        if not q.get("error"):
            problem = fidelity_problem(q, **limits)
            on[rt] = None if problem is None else f"on {rt} (as the sweep runs it): {problem}"
    return replace(built, degraded=fidelity_problem(built.record, **limits), degraded_on=on)


def _reason(exc: BaseException) -> str:
    """The original error inside Ray's wrapper, as one line."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
