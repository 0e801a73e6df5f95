"""Session-wide artifact cache for harness tests: the digits CNN trains once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory: pytest.TempPathFactory):
    from harness.variants.cache import ArtifactCache

    return ArtifactCache(Path(tmp_path_factory.mktemp("artifacts")))


@pytest.fixture(scope="session")
def digits_source(artifact_cache):
    from harness.config.suite import BuiltinModel
    from harness.zoo import resolve_model

    return resolve_model(BuiltinModel(builtin="digits-cnn"), artifact_cache)


@pytest.fixture(scope="session")
def mobilenet_source(artifact_cache):
    from harness.config.suite import BuiltinModel
    from harness.zoo import resolve_model

    return resolve_model(BuiltinModel(builtin="mobilenetv2-224"), artifact_cache)
