"""The agent zipapp is deterministic: same sources, same bytes, same name."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from harness.coordinator.bundle import AGENT_DIR, SHEBANG, build_agent


def test_same_sources_same_bytes_and_name(tmp_path: Path) -> None:
    a = build_agent(tmp_path / "a")
    b = build_agent(tmp_path / "b")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    assert a.name == "agent-%s.pyz" % hashlib.sha256(a.read_bytes()).hexdigest()[:16]


def test_existing_file_is_returned_untouched(tmp_path: Path) -> None:
    first = build_agent(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert build_agent(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp files left


def test_archive_layout(tmp_path: Path) -> None:
    pyz = build_agent(tmp_path)
    assert pyz.read_bytes().startswith(SHEBANG) and SHEBANG == b"#!/usr/bin/env python3\n"
    with zipfile.ZipFile(pyz) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert "__main__.py" in names and "agent/cli.py" in names and "agent/runtimes/openvino.py" in names
        assert not any("__pycache__" in n or not n.endswith(".py") for n in names)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in infos} == {0o100644}
        assert b"agent.cli" in zf.read("__main__.py")
        src = sorted(p for p in AGENT_DIR.rglob("*.py") if "__pycache__" not in p.parts)
        assert len(names) == len(src) + 1
        assert zf.read("agent/stats.py") == (AGENT_DIR / "stats.py").read_bytes()


def test_changed_source_changes_the_name(tmp_path: Path, monkeypatch) -> None:
    import harness.coordinator.bundle as bundle

    base = build_agent(tmp_path / "a")
    monkeypatch.setattr(bundle, "MAIN", bundle.MAIN + "# changed\n")
    assert build_agent(tmp_path / "b").name != base.name
