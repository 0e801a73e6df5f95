"""Content-addressed artifact directories: ``root/<kind>/<key>/``.

Trained weights, data splits and compressed variants are all expensive to make and fully
determined by their inputs, so each is stored under the sha256 of those inputs and built
at most once. A build runs in a private temp directory that is renamed into place in one
step: readers never see half an artifact, and when two workers (threads, Ray processes)
build the same key at once the loser's rename fails and its copy is thrown away.
Stdlib only: planning code imports this without torch.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from harness.hashing import canonical_json, content_key, sha256_file

META = "meta.json"

__all__ = ["ArtifactCache", "canonical_json", "content_key", "sha256_file"]


class ArtifactCache:
    """Build-once store of artifact directories, safe for concurrent builders."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key

    def lookup(self, kind: str, key_material: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
        """The stored artifact for these inputs, or None (never builds)."""
        final = self.path(kind, content_key(key_material))
        meta = _read_meta(final)
        return None if meta is None else (final, meta)

    def get_or_build(
        self, kind: str, key_material: dict[str, Any], build: Callable[[Path], dict[str, Any] | None]
    ) -> tuple[Path, dict[str, Any], bool]:
        """Return ``(dir, meta, cached)``; call ``build(tmpdir)`` only if the key is absent.

        ``build`` writes its files into the directory it is given and returns a JSON-able
        meta dict (stored as ``meta.json`` with the key, the key material and ``build_s``
        added). ``cached`` is False only for the call whose build was stored. Exceptions
        from ``build`` propagate and leave nothing behind.
        """
        key = content_key(key_material)
        final = self.path(kind, key)
        meta = _read_meta(final)
        if meta is not None:
            return final, meta, True
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a directory without meta.json was not made by us: set it aside
            _discard(final, final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=final.parent))
        try:
            t0 = time.perf_counter()
            built = dict(build(tmp) or {})
            built.setdefault("build_s", round(time.perf_counter() - t0, 3))
            built.update(key=key, kind=kind, key_material=key_material, created=time.time())
            (tmp / META).write_text(json.dumps(built, indent=2, sort_keys=True, default=str))
            try:
                os.rename(tmp, final)  # atomic; fails if another builder got there first
            except OSError:
                if _read_meta(final) is None:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                return final, _read_meta(final) or {}, True
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final, built, False


def _read_meta(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / META).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _discard(directory: Path, parent: Path) -> None:
    trash = Path(tempfile.mkdtemp(prefix=".trash.", dir=parent))
    try:
        os.rename(directory, trash / "x")
    except OSError:
        pass
    shutil.rmtree(trash, ignore_errors=True)
