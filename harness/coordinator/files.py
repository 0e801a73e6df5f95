"""The coordinator's files (agent, artifacts, eval sets) for site actors anywhere in the Ray cluster.

Artifacts are built into the coordinator's own cache. A site actor on another node (the
machine that can reach a site's lab network) has none of them: it fetches each file it
needs by content hash from a ``FileServer`` pinned to the coordinator's node, once, into
its node's staging directory. On the coordinator's node the files are used where they lie.

One site actor drives many boards, each on its own thread: they share one ``Stager``'s
staging directory (``for_board``), and a file two boards need at once is fetched once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TransportError
from harness.hashing import sha256_file

CHUNK = 16 << 20  # bytes per fetch: a large model never has to fit in one Ray object


@dataclass(frozen=True)
class FileRef:
    path: Path  # on the coordinator's node
    sha256: str

    @classmethod
    def of(cls, path: Path, sha256: str | None = None) -> FileRef:
        return cls(path, sha256 or sha256_file(path))


class FileServer:
    """Serves registered files by hash, in chunks. Ray actor on the coordinator's node."""

    def __init__(self, refs: list[FileRef]):
        self._paths = {r.sha256: r.path for r in refs}

    def register(self, refs: list[FileRef]) -> None:
        """Serve these too (the variants, once built)."""
        self._paths.update({r.sha256: r.path for r in refs})

    def size(self, sha256: str) -> int:
        return self._paths[sha256].stat().st_size

    def read(self, sha256: str, offset: int) -> bytes:
        with open(self._paths[sha256], "rb") as f:
            f.seek(offset)
            return f.read(CHUNK)


class Stager:
    """Makes a FileRef a local path on whichever node the caller runs.

    Thread-safe: the boards of one site actor call it from their own threads, through views
    (``for_board``) that share the staging directory and its locks and count each board's
    own fetched bytes (``fetched_bytes``, which the board's results report)."""

    def __init__(self, server: object, home_node: str, stage_dir: str):
        self.server = server
        self.home_node = home_node
        self.stage_dir = Path(os.path.expanduser(stage_dir))
        self.fetched_bytes = 0
        self._locks = _KeyedLocks()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_locks"]  # locks do not travel: the actor that unpickles it makes its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._locks = _KeyedLocks()

    def for_board(self) -> Stager:
        """A view for one board: the same staging directory and locks, its own byte count."""
        view = object.__new__(Stager)
        view.__dict__.update(self.__dict__)
        view.fetched_bytes = 0
        return view

    def local(self, ref: FileRef) -> Path:
        import ray

        if ray.get_runtime_context().get_node_id() == self.home_node:
            return ref.path
        target = self.stage_dir / f"{ref.sha256}{ref.path.suffix}"
        if not target.is_file():
            with self._locks.get(ref.sha256):  # another board of this actor may be fetching it right now
                if not target.is_file():
                    self._fetch(ref, target)
        return target

    def _fetch(self, ref: FileRef, target: Path) -> None:
        import ray

        target.parent.mkdir(parents=True, exist_ok=True)
        # pid and thread: another actor on this node may fetch the same file (both copies are whole; one wins)
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.part")
        try:
            size = ray.get(self.server.size.remote(ref.sha256))
            with open(tmp, "wb") as f:
                for offset in range(0, size, CHUNK) or (0,):
                    f.write(ray.get(self.server.read.remote(ref.sha256, offset)))
            if sha256_file(tmp) != ref.sha256:
                raise TransportError(f"staged copy of {ref.path.name} does not match its hash")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.fetched_bytes += size


class _KeyedLocks:
    """One lock per key, made on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())
