"""Reading a job spec's JSON: typed keys whose every fault is a ProtocolError naming the key.

``where`` is the key's path so far (``"canary.input."``), so a fault in a nested section
names it in full.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from .errors import ProtocolError

DTYPES = ("float32", "float16", "float64", "uint8", "int8", "int32", "int64", "bool")


def read_spec_file(path: str) -> Dict[str, Any]:
    """The raw JSON object of a spec file (ProtocolError when unreadable or not an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise ProtocolError("cannot read spec %s: %s" % (path, exc)) from None
    if not isinstance(raw, dict):
        raise ProtocolError("spec %s must hold a JSON object, got %s" % (path, type(raw).__name__))
    return raw


def get(obj: Dict[str, Any], key: str, where: str, types: Tuple[type, ...], nullable: bool = False) -> Any:
    """``obj[key]``, which must be present and of one of ``types`` (or null when ``nullable``)."""
    if key not in obj:
        raise ProtocolError("spec is missing key %s%s" % (where, key))
    value = obj[key]
    if value is None and nullable:
        return None
    # bool is an int subclass: a stray true must not pass as 1.
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        names = "/".join(t.__name__ for t in types) + (" or null" if nullable else "")
        raise ProtocolError("spec key %s%s must be %s, got %r" % (where, key, names, value))
    return value


def section(raw: Dict[str, Any], key: str, allowed: Tuple[str, ...], where: str = "") -> Dict[str, Any]:
    """An object-valued key: a typo'd sub-key is refused, not ignored."""
    value = get(raw, key, where, (dict,))
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ProtocolError("unknown spec key %s%s.%s (allowed: %s)" % (where, key, unknown[0], ", ".join(allowed)))
    return value


def parse_input(raw: Dict[str, Any], where: str = "") -> Tuple[Tuple[int, ...], str]:
    """``input``: (shape, dtype)."""
    inp = section(raw, "input", ("shape", "dtype"), where)
    return _shape_dtype(inp, where + "input.")


def parse_inputs(raw: Dict[str, Any], where: str = "") -> Tuple[Tuple[str, Tuple[int, ...], str], ...]:
    """``inputs``: every input of the model as (name, shape, dtype), in the model's order; ()
    when null or absent (a one-input job). Names must be non-empty and distinct."""
    value = raw.get("inputs")
    if value is None:
        return ()
    items = get(raw, "inputs", where, (list,))
    if not items:
        raise ProtocolError("spec key %sinputs must be a non-empty list of inputs or null, got []" % where)
    out = []  # type: List[Tuple[str, Tuple[int, ...], str]]
    for i, item in enumerate(items):
        at = "%sinputs[%d]" % (where, i)
        if not isinstance(item, dict):
            raise ProtocolError("spec key %s must be an object with name, shape and dtype, got %r" % (at, item))
        unknown = sorted(set(item) - {"name", "shape", "dtype"})
        if unknown:
            raise ProtocolError("unknown spec key %s.%s (allowed: name, shape, dtype)" % (at, unknown[0]))
        name = get(item, "name", at + ".", (str,))
        if not name:
            raise ProtocolError("spec key %s.name must be a non-empty string, got %r" % (at, name))
        if any(name == n for n, _, _ in out):
            raise ProtocolError("spec key %s.name repeats the input name %r" % (at, name))
        shape, dtype = _shape_dtype(item, at + ".")
        out.append((name, shape, dtype))
    return tuple(out)


def _shape_dtype(obj: Dict[str, Any], at: str) -> Tuple[Tuple[int, ...], str]:
    """An input's ``shape`` (batch first, positive ints) and ``dtype``; ``at`` ends with a dot."""
    shape_raw: List[Any] = get(obj, "shape", at, (list,))
    if not shape_raw or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape_raw):
        raise ProtocolError("spec key %sshape must be a non-empty list of positive ints, got %r" % (at, shape_raw))
    dtype = get(obj, "dtype", at, (str,))
    if dtype not in DTYPES:
        raise ProtocolError("spec key %sdtype must be one of %s, got %r" % (at, ", ".join(DTYPES), dtype))
    return tuple(shape_raw), dtype


def options(raw: Dict[str, Any], where: str = "") -> Dict[str, Any]:
    """``runtime_options``: an object, or {} when null or absent (the runtime checks its keys)."""
    value = raw.get("runtime_options")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("spec key %sruntime_options must be an object, got %r" % (where, value))
    return dict(value)


def number(obj: Dict[str, Any], key: str, where: str) -> float:
    value = get(obj, key, where, (int, float))
    if value != value or value in (float("inf"), float("-inf")):
        raise ProtocolError("spec key %s%s must be a finite number, got %r" % (where, key, value))
    return float(value)
