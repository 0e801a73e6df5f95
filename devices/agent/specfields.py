"""Reading a job spec's JSON: typed keys whose every fault is a ProtocolError naming the key.

``where`` is the key's path so far (``"canary.input."``), so a fault in a nested section
names it in full.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from .errors import ProtocolError

DTYPES = ("float32", "float16", "float64", "uint8", "int8", "int32", "int64")


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
    at = where + "input."
    shape_raw: List[Any] = get(inp, "shape", at, (list,))
    if not shape_raw or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape_raw):
        raise ProtocolError("spec key %sshape must be a non-empty list of positive ints, got %r" % (at, shape_raw))
    dtype = get(inp, "dtype", at, (str,))
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
