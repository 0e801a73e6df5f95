"""The agent must run on a JetPack 5 board: Python 3.8, numpy, one runtime, nothing else."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import agent_testlib as lib
import pytest

AGENT = lib.REPO / "devices" / "agent"
SOURCES = sorted(AGENT.rglob("*.py"))
ALLOWED_TOP = {"numpy"} | set(sys.stdlib_module_names)
RUNTIME_LIBS = {"onnxruntime", "openvino", "tensorrt", "torch"}
# Builtins that only became subscriptable (list[int]) in 3.9: fine inside annotations
# under ``from __future__ import annotations``, a TypeError anywhere else on 3.8.
PEP585 = {"list", "dict", "tuple", "set", "frozenset", "type"}
NEW_STR_METHODS = ("removeprefix", "removesuffix")


def ids(path: Path) -> str:
    return str(path.relative_to(AGENT))


def test_sources_found() -> None:
    names = {ids(p) for p in SOURCES}
    assert {"cli.py", "measure.py", "stats.py", "runtimes/base.py", "runtimes/openvino.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_parses_as_python_38(path: Path) -> None:
    src = path.read_text()
    tree = ast.parse(src, filename=str(path), feature_version=(3, 8))
    annotations = set()
    for node in ast.walk(tree):
        for ann in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if ann is not None:
                annotations.update(id(n) for n in ast.walk(ann))
    has_annotations = bool(annotations)
    if has_annotations:
        assert "from __future__ import annotations" in src, "annotations need the __future__ import on 3.8"
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and id(node) not in annotations:
            assert not (isinstance(node.value, ast.Name) and node.value.id in PEP585), (
                "%s:%d: %s[...] outside an annotation fails on 3.8" % (path.name, node.lineno, node.value.id)
            )
        if isinstance(node, ast.Attribute):
            assert node.attr not in NEW_STR_METHODS, "%s:%d: str.%s is 3.9+" % (path.name, node.lineno, node.attr)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) and id(node) not in annotations:
            for side in (node.left, node.right):
                assert not (isinstance(side, ast.Constant) and side.value is None), "X | None outside annotation"


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_imports_only_stdlib_numpy_and_lazy_runtimes(path: Path) -> None:
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [(node.module or "").split(".")[0]]
        else:
            continue
        for name in names:
            assert name not in ("harness", "reports", "devices"), "%s imports %s" % (path.name, name)
            if name in RUNTIME_LIBS:
                assert id(node) not in top_level, "%s imports %s at module level" % (path.name, name)
            else:
                assert name in ALLOWED_TOP, "%s imports non-stdlib %s" % (path.name, name)


def test_package_imports_without_runtimes() -> None:
    """Importing every agent module must not import onnxruntime or openvino."""
    code = (
        "import sys, pkgutil, importlib, devices.agent as a\n"
        "for m in pkgutil.walk_packages(a.__path__, 'devices.agent.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "bad = [m for m in ('onnxruntime', 'openvino') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=lib.REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", SOURCES, ids=ids)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) < 300
