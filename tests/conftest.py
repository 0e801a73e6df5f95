"""Fixtures shared by the whole suite: the artifact cache (the digits CNN trains once per
session) and a real local Ray instance (started once, as Ray's testing tips advise)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Ray reads these when it is first imported, and any test may import it first (the runner
# asks Ray for its node id): set them before any test runs, not in the fixture.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")


@pytest.fixture(scope="session", autouse=True)
def board_lease_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This machine's lease as a board (devices of kind local) lives in the session's own
    directory, not in /tmp/edge-harness-<uid>, which other test sessions and real sweeps on
    this machine share. Set in the environment, as a board would: local transports pass it on."""
    path = tmp_path_factory.mktemp("board-lease")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGE_HARNESS_LEASE_DIR", str(path))
        yield path


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


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A real local Ray; the coordinator reuses it instead of starting its own."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory):
    """Real OpenSSH servers, one per simulated board: ``ssh_lab(3)`` gives three running hosts.

    Network namespaces when possible, 127.0.0.1 ports otherwise (``ssh_lab.mode`` says
    which). Teardown kills every server and deletes the namespaces even when tests fail.
    """
    import shutil

    from tests.sshlab import SSHD, SSHLab

    if not (os.path.exists(SSHD) and shutil.which("ssh-keygen")):
        pytest.skip("openssh-server / ssh-keygen not installed (make system-deps installs them)")
    lab = SSHLab(Path(tmp_path_factory.mktemp("sshlab")))
    try:
        yield lab
    finally:
        lab.close()
