"""YAML loading that remembers where every key came from.

Pydantic reports errors as a path of keys (``devices.1.kind``); users need ``file:line``.
We load with ruamel's round-trip loader (which keeps line/column per key and item),
validate plain data with pydantic, and map each error path back to the node's line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from harness.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Every config model: unknown keys are errors (a typo must not pass silently), values are
    frozen, and a number is finite (``.inf`` and ``.nan`` pass YAML but break a run)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def load_yaml(path: Path) -> Any:
    """Round-trip load: the result keeps line numbers (duplicate keys are an error). Whatever
    the file holds, the only error is a ConfigError naming it (and its line where there is one)."""
    if path.is_dir():
        raise ConfigError("is a directory, not a file", location=str(path))
    if not path.is_file():
        raise ConfigError("file not found" if not path.exists() else "not a regular file", location=str(path))
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"larger than {MAX_FILE_BYTES >> 20} MiB: not a suite, inventory or policy file",
                              location=str(path))
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not a UTF-8 text file (byte {e.start}): is it a YAML file?", location=str(path)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", location=str(path)) from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        nodes = _expanded_size(yaml.compose(text), {})
        if nodes > MAX_NODES:
            raise ConfigError(f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb?)",
                              location=str(path))
        return yaml.load(text)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError("nested too deeply to be a configuration file", location=str(path)) from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(" ".join(str(e.problem or e).split()), location=line) from None
    except ReaderError as e:  # a character YAML does not allow in a text (NUL, other control characters)
        line = text.count("\n", 0, max(0, e.position)) + 1
        raise ConfigError(f"character {e.character!r} is not allowed in a YAML file: is it a text file?",
                          location=f"{path}:{line}") from None
    except (YAMLError, ValueError, TypeError, OverflowError) as e:
        # ruamel's constructors raise plain errors for explicitly tagged values (!!int abc,
        # !!timestamp 2024-13-45) and numbers past Python's digit limit; they carry no mark.
        raise ConfigError(f"a value YAML cannot read: {' '.join(str(e).split())[:200]}", location=str(path)) from None


# A configuration file is small: bound what loading one may cost (a binary file given by
# mistake, aliases nested into a "billion laughs").
MAX_FILE_BYTES = 4 << 20
MAX_NODES = 1_000_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values ``node`` becomes once every alias is expanded, counted over the composed
    graph (each shared node once, memoised), so a bomb is measured without expanding it."""
    if node is None:
        return 0
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a cycle counts once
    value = node.value
    if isinstance(value, list):
        children = [c for pair in value for c in (pair if isinstance(pair, tuple) else (pair,))]
        size = 1 + sum(min(_expanded_size(c, memo), MAX_NODES + 1) for c in children)
    else:
        size = 1
    memo[id(node)] = size = min(size, MAX_NODES + 1)
    return size


def line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node on ``loc`` that the YAML file still has."""
    line: int | None = None
    node = data
    for key in loc:
        if isinstance(node, CommentedMap) and key not in node:  # a key that was no string (1:, [a, b]:)
            key = next((k for k in node if str(k) == str(key)), key)
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    if line is None and isinstance(node, (CommentedMap, CommentedSeq)) and node.lc.line is not None:
        line = node.lc.line + 1
    return line


def location(path: str | Path | None, loc: tuple[Any, ...]) -> str | None:
    """``file:line`` of the key at ``loc`` in a file loaded before (for an error found later,
    against another file: a suite's device name the inventory lacks); the file alone when the
    line cannot be found, None without a path."""
    if not path:
        return None
    try:
        line = line_of(load_yaml(Path(path)), loc)
    except ConfigError:
        return str(path)
    return f"{path}:{line}" if line else str(path)


def _plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def validate(model: type[M], data: Any, path: Path) -> M:
    """Validate ``data`` loaded from ``path``; the first error becomes a ``ConfigError``."""
    if data is None:
        data = CommentedMap()
    try:
        return model.model_validate(_plain(data), context={"base_dir": path.parent})
    except ValidationError as e:
        err = _most_telling(e.errors(include_url=False))
        loc = _user_loc(tuple(err["loc"]))
        line = line_of(data, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else msg
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {err['input']!r})"
        location = f"{path}:{line}" if line else str(path)
        raise ConfigError(msg, location=location, field=".".join(map(str, loc)) or None) from None


def _user_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop path parts pydantic invents (union tags, ``function-after[...]``)."""
    return tuple(k for k in loc if not (isinstance(k, str) and (k in UNION_TAGS or "[" in k)))


def _most_telling(errors: list[Any]) -> Any:
    """The error to report. A value checked against a union (``bool | Canary``) fails once per
    member; the first failure is often only "not a bool" when the value was meant as the other
    member and has its own, telling, problem (``canary: {every: -1}``): report that one."""
    first = errors[0]
    if first["type"] not in _NOT_THIS_MEMBER or _user_loc(tuple(first["loc"])) == tuple(first["loc"]):
        return first
    at = _user_loc(tuple(first["loc"]))
    return next((e for e in errors[1:] if e["type"] not in _NOT_THIS_MEMBER
                 and _user_loc(tuple(e["loc"]))[:len(at)] == at), first)


# Tags of our unions; pydantic puts them in error paths, users never wrote them (no key of any
# file is named like a Python type).
UNION_TAGS = {"builtin-model", "onnx-model", "factory-model", "tflite-model", "npz", "bool", "int", "float", "str",
              "none"}
# Errors that only say a value is not of one member's type: the value may be the other member's.
_NOT_THIS_MEMBER = {"bool_type", "bool_parsing", "int_type", "int_parsing", "float_type", "float_parsing",
                    "string_type", "literal_error", "model_type", "dict_type", "tuple_type", "list_type",
                    "none_required", "is_instance_of", "model_attributes_type"}
