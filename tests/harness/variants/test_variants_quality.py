"""Host-side reference quality: accuracy with labels, agreement and cosine without."""

from __future__ import annotations

import dataclasses

import pytest

from harness.variants import build_variant
from harness.variants.quality import SYNTHETIC_SAMPLES, reference_quality, variant_record


def test_labelled_model_gets_accuracy_and_agreement(digits_source, artifact_cache) -> None:  # noqa: ANN001
    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    int8 = build_variant(digits_source, "int8-dynamic", artifact_cache)
    q_ref = reference_quality(fp32, fp32)
    q = reference_quality(int8, fp32)
    assert q_ref["agreement"] == 1.0 and abs(q_ref["cosine"] - 1.0) < 1e-9 and q_ref["host_accuracy"] >= 0.95
    assert 0.9 < q["agreement"] < 1.0 + 1e-12 and 0.99 < q["cosine"] <= 1.0 + 1e-9
    assert abs(q["host_accuracy"] - q_ref["host_accuracy"]) < 0.02
    record = variant_record(int8, q)
    assert record["variant_id"] == int8.variant_id and record["precision"] == "int8" and record["agreement"] == q["agreement"]


def test_unlabelled_model_uses_synthetic_inputs(digits_source, artifact_cache) -> None:  # noqa: ANN001
    fp32 = dataclasses.replace(build_variant(digits_source, "fp32", artifact_cache), eval_path=None)
    int8 = dataclasses.replace(build_variant(digits_source, "int8-dynamic", artifact_cache), eval_path=None)
    q = reference_quality(int8, fp32)
    assert q["host_accuracy"] is None and q["quality_n"] == SYNTHETIC_SAMPLES
    assert 0.0 <= q["agreement"] <= 1.0 and q["cosine"] > 0.9
    assert reference_quality(int8, None)["agreement"] is None


def test_quality_is_scored_once_per_variant(digits_source, artifact_cache, monkeypatch) -> None:  # noqa: ANN001
    import harness.variants.quality as quality

    fp32 = build_variant(digits_source, "fp32", artifact_cache)
    int8 = build_variant(digits_source, "int8-dynamic", artifact_cache)
    first = quality.cached_quality(int8, fp32)
    assert first == quality.reference_quality(int8, fp32)

    def no_inference(*_args: object) -> None:
        raise AssertionError("a cached variant was scored again")

    monkeypatch.setattr(quality, "_run", no_inference)
    assert quality.cached_quality(int8, fp32) == first
    with pytest.raises(AssertionError, match="scored again"):
        quality.cached_quality(int8, None)  # another reference is another score
