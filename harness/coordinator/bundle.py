"""Build the device agent as one deterministic zipapp: ``agent-<sha16>.pyz``.

The board needs only Python, numpy and its runtime: ``python3 agent-<sha>.pyz measure
spec.json``. Entries are sorted, timestamped 1980-01-01 (the zip epoch) and have fixed
permissions, so the same sources always give the same bytes and the same file name; the
coordinator can then skip the upload when the board already holds that name.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parents[2] / "devices" / "agent"
SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o644
MAIN = (
    '"""Zipapp entry point of the Edge Harness device agent."""\n'
    "import sys\n\n"
    "from agent.cli import main\n\n"
    "sys.exit(main())\n"
)


def agent_sources(agent_dir: Path = AGENT_DIR) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every agent .py file, sorted, under the package ``agent/``."""
    files = sorted(p for p in agent_dir.rglob("*.py") if "__pycache__" not in p.parts)
    entries = [("agent/" + p.relative_to(agent_dir).as_posix(), p.read_bytes()) for p in files]
    entries.append(("__main__.py", MAIN.encode()))
    return sorted(entries)


def build_bytes(agent_dir: Path = AGENT_DIR) -> bytes:
    """The zipapp's bytes: shebang, then a zip with fixed timestamps and permissions."""
    buf = io.BytesIO()
    buf.write(SHEBANG)
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in agent_sources(agent_dir):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | _MODE) << 16  # regular file, rw-r--r--
            info.create_system = 3  # Unix, whatever the building OS
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def build_agent(out_dir: Path) -> Path:
    """Write ``agent-<first 16 hex of sha256>.pyz`` into ``out_dir`` and return its path.

    Returns the existing file untouched when it is already there; writes atomically
    otherwise, so a concurrent build never leaves a half-written archive under that name.
    """
    data = build_bytes()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / ("agent-%s.pyz" % hashlib.sha256(data).hexdigest()[:16])
    if target.is_file():
        return target
    tmp = target.with_name(".%s.%d.tmp" % (target.name, os.getpid()))
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target
