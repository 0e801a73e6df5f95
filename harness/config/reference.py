"""The reference of the suite and inventory files, rendered from the config models themselves.

``docs/formats.md`` is this module's output: every key, its type, its default and its
description come from the pydantic models (``model_fields``, ``FieldInfo.description``),
so the page cannot drift from what the loader accepts. Regenerate it after changing a model:

    python -m harness.config.reference > docs/formats.md

The output is deterministic (models in the order the walk first meets them, fields in
declaration order, defaults rendered as YAML-like literals): a test compares the page with it.
"""

from __future__ import annotations

import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from harness.config import gate as gate_module
from harness.config import inventory as inventory_module
from harness.config.inventory import Inventory
from harness.config.suite import Suite

REGENERATE = "python -m harness.config.reference > docs/formats.md"

# The files and the root model of each, in page order.
FILES: tuple[tuple[str, type[BaseModel], str], ...] = (
    ("A suite file", Suite,
     "What to measure and how: models, variants, runtimes, devices, the measurement protocol, the "
     "release policy. Passed to `harness sweep SUITE` and `harness variants build SUITE`; paths in it "
     "are relative to the suite file."),
    ("An inventory file", Inventory,
     "The fleet: how to reach each board and what it offers. Passed with `--inventory FILE`; without "
     "it the fleet is this machine alone (a device `local` with ONNX Runtime, OpenVINO and LiteRT)."),
)  # fmt: skip


@dataclass(frozen=True)
class Section:
    model: type[BaseModel]
    file: str  # the heading of the file it was first met in
    where: tuple[tuple[type[BaseModel], str], ...]  # (parent, key) for every place it appears


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` -> ``X`` (at any depth of nesting of Annotated itself)."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _models_in(tp: Any) -> Iterator[type[BaseModel]]:
    """The models a type refers to, in the order they appear in it."""
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        yield tp
        return
    for arg in typing.get_args(tp):
        yield from _models_in(arg)


def _fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """The model's own fields first (declaration order), then those it inherits: a device's
    name and kind read before the connection keys it shares with ``defaults``."""
    own = [n for n in model.__dict__.get("__annotations__", {}) if n in model.model_fields]
    rest = [n for n in model.model_fields if n not in own]
    return [(n, model.model_fields[n]) for n in [*own, *rest]]


def sections() -> list[Section]:
    """Every model of the two files, in page order: a breadth-first walk from each root."""
    found: dict[type[BaseModel], Section] = {}
    order: list[type[BaseModel]] = []
    for heading, root, _ in FILES:
        queue = [root]
        if root not in found:
            found[root] = Section(root, heading, ())
            order.append(root)
        while queue:
            model = queue.pop(0)
            for name, info in _fields(model):
                for sub in dict.fromkeys(_models_in(info.annotation)):
                    place = (model, name)
                    if sub not in found:
                        found[sub] = Section(sub, heading, (place,))
                        order.append(sub)
                        queue.append(sub)
                    elif place not in found[sub].where:
                        s = found[sub]
                        found[sub] = Section(sub, s.file, (*s.where, place))
    return [found[m] for m in order]


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _literal(value: Any) -> str:
    """A value as it would be written in the YAML file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _literal(value.value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _type(tp: Any) -> str:
    """A type as a reader of the file thinks of it: ``list of str``, ``float | null``, a link."""
    tp = _unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{_anchor(tp)})"
    if origin is Literal:
        return " | ".join(f"`{_literal(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        parts = [_type(a) for a in args if _unwrap(a) is not type(None)]
        if any(_unwrap(a) is type(None) for a in args):
            parts.append("null")
        return " | ".join(dict.fromkeys(parts))
    if origin in (tuple, list, set, frozenset):
        items = [a for a in args if a is not Ellipsis]
        inner = _type(items[0]) if len(set(map(_unwrap, items))) == 1 else ", ".join(_type(a) for a in items)
        return f"list of {inner}" if items else "list"
    if origin is dict:
        key, value = (_type(a) for a in args) if args else ("str", "any")
        return f"mapping of {key} to {value}"
    if tp is dict:
        return "mapping"
    if isinstance(tp, type) and issubclass(tp, Path):
        return "path"
    if tp in (bool, int, float, str):
        return tp.__name__
    return getattr(tp, "__name__", str(tp))


_BOUNDS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"),
           (annotated_types.Le, "le", "<="), (annotated_types.Lt, "lt", "<"))  # fmt: skip


def _constraints(info: FieldInfo) -> list[str]:
    """Bounds a value must meet, from the field's metadata: ``>= 1``, ``non-empty``."""
    out = []
    for meta in info.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(meta, kind):
                out.append(f"{sign} {_literal(getattr(meta, attr))}")
        if isinstance(meta, annotated_types.MinLen) and meta.min_length > 0:
            out.append("non-empty" if meta.min_length == 1 else f"at least {meta.min_length} items")
        if isinstance(meta, annotated_types.MaxLen):
            out.append(f"at most {meta.max_length} items")
    return out


def _effective_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Defaults applied after validation rather than by the model: a device's connection keys
    left unset take the inventory's ``defaults:``, then these built-in values."""
    if issubclass(model, inventory_module.Connection):
        return dict(getattr(inventory_module, "DEFAULTS", {}))
    return {}


def _default(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None and name in _effective_defaults(model):
        value = _effective_defaults(model)[name]
    if isinstance(value, BaseModel):
        return f"[{type(value).__name__}](#{_anchor(type(value))})'s defaults"
    if value is PydanticUndefined:
        return "required"
    return f"`{_literal(value)}`"


def _description(info: FieldInfo) -> str:
    return " ".join((info.description or "").split())


def _where(section: Section) -> str:
    """``Appears as `a`, `b` in [Parent](#parent).``, keys grouped by parent."""
    keys: dict[type[BaseModel], list[str]] = {}
    for parent, key in section.where:
        keys.setdefault(parent, []).append(f"`{key}`")
    return "Appears as " + "; ".join(f"{', '.join(k)} in [{p.__name__}](#{_anchor(p)})" for p, k in keys.items()) + "."


def _default_policy() -> str:
    """The policy a gate applies when neither the suite nor ``--policy`` gives one."""
    rules = gate_module.DEFAULT.model_dump(exclude_none=True)
    parts = []
    for name, value in rules.items():
        if isinstance(value, dict) and "max_increase" in value:
            parts.append(f"`{name}` +{value['max_increase'] * 100:g}%")
        elif isinstance(value, dict) and "max_drop" in value:
            parts.append(f"`{name}` -{value['max_drop']:g} points")
        elif name == "fdr":
            parts.append(f"`fdr` {value:g}")
    return "Without a `gate:` in the suite or `--policy FILE`, the gate applies: " + ", ".join(parts) + "."


def _cell(text: str) -> str:
    """Table-cell safe: pipes escaped; outside code spans, ``<`` too (``site:<site>`` is no HTML tag)."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def _doc(model: type[BaseModel]) -> str:
    """The model's own docstring as Markdown (``x`` -> `x`), or nothing."""
    doc = model.__dict__.get("__doc__")
    if not doc:
        return ""
    text = inspect.cleandoc(doc)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    text = re.sub(r"\bdocs/([\w-]+\.md)", r"[\1](\1)", text)  # the page lives in docs/ itself
    return "\n".join(line if line.strip() else "" for line in text.splitlines())


def _table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, info in _fields(model):
        kind = ", ".join([_type(info.annotation), *_constraints(info)])
        cells = [f"`{name}`", kind, _default(model, name, info), _description(info)]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return rows


def formats_reference() -> str:
    """The Markdown page ``docs/formats.md``."""
    out = [
        "# File formats",
        "",
        "<!-- Generated from the pydantic models in harness/config/ by",
        f"     {REGENERATE}",
        "     Do not edit by hand: change the models' field descriptions and regenerate. -->",
        "",
        "This page is generated from the config models (`harness/config/`): run",
        f"`{REGENERATE}` after changing one; a test fails while the page is stale.",
        "Every key below is checked when a file is loaded: an unknown key, a wrong type or a value out",
        "of bounds is an error naming the file, the line and the key (exit code 2).",
        "",
    ]
    intro = {heading: text for heading, _, text in FILES}
    current = None
    for section in sections():
        if section.file != current:
            current = section.file
            out += [f"## {current}", "", intro[current], ""]
        out += [f"### {section.model.__name__}", ""]
        if section.where:
            out += [_where(section), ""]
        doc = _doc(section.model)
        if doc:
            out += [doc, ""]
        if section.model is gate_module.Policy:  # what applies when a suite has no policy
            out += [_default_policy(), ""]
        out += [*_table(section.model), ""]
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(formats_reference())
