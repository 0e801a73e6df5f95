"""Arrows between the top-level folders go one way: harness -> reports, harness -> devices.

``devices/`` is what runs on a board (it ships alone, as the agent's zipapp); ``reports/``
renders what the harness hands it. Neither imports the harness, and devices imports
nothing from reports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# folder -> the top-level packages of this repository it must not import
FORBIDDEN = {"devices": {"harness", "reports"}, "reports": {"harness"}}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_arrow_runs_back_up(folder: str) -> None:
    files = sorted((REPO / folder).rglob("*.py"))
    assert files
    upward = [f"{p.relative_to(REPO)}:{line}: {name}" for p in files for line, name in _imports(p)
              if name.split(".")[0] in FORBIDDEN[folder]]
    assert not upward, "\n".join(upward)


def test_devices_holds_only_what_runs_on_a_board() -> None:
    assert sorted(p.name for p in (REPO / "devices").iterdir() if p.name != "__pycache__") == ["__init__.py", "agent"]
