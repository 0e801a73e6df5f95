"""The transport interface: how the coordinator reaches a device.

Every transport runs argv lists (never shell strings built by concatenation), streams
stdout line by line, and puts files by content hash under the device's work directory
so an artifact already there is never sent twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.hashing import sha256_file


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float


class Transport(ABC):
    """One device's connection. Not thread-safe: a device actor owns exactly one."""

    name: str

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.uploaded_bytes = 0  # by put_by_hash since this transport was made: what the cache did not save

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def run(
        self,
        argv: list[str],
        timeout_s: float,
        on_line: Callable[[str], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run argv on the device; ``on_line`` sees each stdout line as it arrives.

        Raises ``CommandTimeout`` after killing the whole remote process group.
        """

    @abstractmethod
    def exists(self, remote: str) -> bool: ...

    @abstractmethod
    def put(self, local: Path, remote: str) -> None:
        """Copy a file; the remote path appears atomically (temp name, then rename)."""

    @abstractmethod
    def write_text(self, remote: str, text: str) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def cache_path(self, digest: str, suffix: str = "") -> str:
        return f"{self.workdir}/cache/{digest}{suffix}"

    def put_by_hash(self, local: Path, digest: str | None = None) -> str:
        """Send ``local`` to ``<workdir>/cache/<sha256><suffix>`` unless it is there already."""
        digest = digest or sha256_file(local)
        remote = self.cache_path(digest, local.suffix)
        if not self.exists(remote):
            self.put(local, remote)
            self.uploaded_bytes += local.stat().st_size
        return remote
