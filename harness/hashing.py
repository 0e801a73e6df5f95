"""Content hashing shared by the artifact cache, the store and the transports.

(The device agent keeps its own few lines for files: it may import nothing from here.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces; Paths and other objects as str."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)


def content_key(material: Any) -> str:
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
