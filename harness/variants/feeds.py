"""Every input of an ONNX graph, and data to feed them all: calibration, build-time checks,
fidelity inputs.

``graph_inputs`` lists the graph's inputs (initializers left out) with their numpy dtype and
a static shape. A symbolic or unknown dimension is resolved from the suite's ``input_shape``:
a shape applies to the graph's first input (a model with one input, the usual case); a
mapping ``{input_name: shape}`` names each input. A dimension still unknown is the batch
(the first one, given the suite's batch size) or an error asking for the input's shape. A
4-D shape given as NCHW for a graph input that is NHWC (its static dimensions say so) is
taken in the graph's layout: the model is fed, and calibrated, in its own layout.

Data comes as a list of feeds ``{input_name: batch}``, one per batch:

- ``data_rows``: from an npz file: ``x`` for a one-input model, or one array per input,
  named after it; 4-D NCHW rows are transposed for an NHWC input;
- ``synthetic_rows``: seeded data per input, in its own dtype and shape: standard normal
  for floats, 0 or 1 for integers (valid as indices and flags), random booleans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import VariantBuildError, name_list

if TYPE_CHECKING:
    import numpy as np

    from harness.zoo.source import SourceModel

Shape = tuple[int, ...]
Feed = dict[str, "np.ndarray"]


@dataclass(frozen=True)
class GraphInput:
    name: str
    dtype: str  # numpy dtype name: float32, int64, ...
    shape: Shape  # static, resolved
    graph_shape: tuple[int | str | None, ...]  # as the graph declares it (str: symbolic, None: unknown)


def nchw_to_nhwc(shape: Sequence[int]) -> Shape:
    n, c, h, w = shape
    return (n, h, w, c)


def _fits(declared: Sequence[int | str | None], shape: Sequence[int]) -> bool:
    return len(declared) == len(shape) and all(not isinstance(d, int) or d <= 0 or d == s
                                               for d, s in zip(declared, shape))


def _declared(vi: Any) -> tuple[int | str | None, ...]:
    out: list[int | str | None] = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return tuple(out)


def _fmt(dims: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def graph_inputs(model: Any, input_shape: Sequence[int] | None = None,
                 input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[GraphInput]:
    """The inputs of ``model`` (a ``ModelProto`` or a path) with static shapes (see the module doc)."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    graph = model.graph
    init = {t.name for t in graph.initializer}
    values = [vi for vi in graph.input if vi.name not in init]
    named = dict(input_shapes or {})
    unknown = [n for n in named if n not in {vi.name for vi in values}]
    if unknown:
        raise VariantBuildError(f"input_shape names {', '.join(map(repr, unknown))}, not an input of the graph "
                                f"({name_list([vi.name for vi in values])})")
    out = []
    for i, vi in enumerate(values):
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise VariantBuildError(f"input {vi.name!r} is not a tensor; only tensor inputs can be fed")
        dtype = str(tensor_dtype_to_np_dtype(tt.elem_type))
        declared = _declared(vi)
        given = named.get(vi.name)
        if given is None and not named and i == 0 and input_shape is not None:
            given = input_shape
        out.append(GraphInput(vi.name, dtype, _resolve(vi.name, declared, given, input_shape, len(values)), declared))
    return out


def _resolve(name: str, declared: tuple[int | str | None, ...], given: Sequence[int] | None,
             suite_shape: Sequence[int] | None, n_inputs: int) -> Shape:
    if given is not None:
        given = tuple(int(d) for d in given)
        if _fits(declared, given):
            return given
        if len(given) == 4 and _fits(declared, nchw_to_nhwc(given)):
            return nchw_to_nhwc(given)  # NCHW given, the graph is NHWC: feed it in its own layout
        raise VariantBuildError(f"input {name!r} is {_fmt(declared)} but the suite gives {list(given)}")
    open_dims = [j for j, d in enumerate(declared) if not isinstance(d, int) or d <= 0]
    if not open_dims:
        return tuple(int(d) for d in declared)  # type: ignore[arg-type]
    if open_dims == [0] and suite_shape:
        return (int(suite_shape[0]), *declared[1:])  # type: ignore[return-value]
    hint = "input_shape: {" + name + ": [...]}" if n_inputs > 1 else "input_shape"
    raise VariantBuildError(f"input {name!r} is {_fmt(declared)}: its unknown dimensions need a shape in the suite "
                            f"({hint})")


def source_inputs(model: Any, source: "SourceModel") -> list[GraphInput]:
    """``graph_inputs`` with the shapes the suite gave for ``source``."""
    return graph_inputs(model, source.input_shape, getattr(source, "input_shapes", None))


def synthetic_rows(inputs: Sequence[GraphInput], n: int, seed: int) -> dict[str, "np.ndarray"]:
    """``n`` seeded samples per input (rows: shape[1:]), each in its input's dtype."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for g in inputs:
        shape = (n, *g.shape[1:])
        dt = np.dtype(g.dtype)
        if np.issubdtype(dt, np.floating):
            out[g.name] = rng.standard_normal(shape, dtype=np.float32).astype(dt)
        elif dt == np.bool_:
            out[g.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            out[g.name] = rng.integers(0, 2, size=shape).astype(dt)
    return out


def data_rows(path: Path, inputs: Sequence[GraphInput], num_samples: int | None = None,
              what: str = "data") -> dict[str, "np.ndarray"]:
    """Rows for every input from the npz at ``path``: ``x`` for a one-input model, else one
    array per input named after it; cast to each input's dtype; NCHW rows transposed for an
    NHWC input; the first ``num_samples`` of them (all inputs cut to the shortest)."""
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise VariantBuildError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from exc
    with data:
        keys = set(data.files)
        names = [g.name for g in inputs]
        if len(inputs) == 1 and inputs[0].name not in keys and "x" in keys:
            arrays = {inputs[0].name: data["x"]}
        else:
            missing = [n for n in names if n not in keys]
            if missing:
                raise VariantBuildError(f"{what} {Path(path).name} has no array for {name_list(missing)} (it has "
                                        f"{name_list(sorted(keys), 'arrays')}); a model with several inputs needs "
                                        "one array per input, named after it")
            arrays = {n: data[n] for n in names}
        arrays = {n: a[:num_samples] for n, a in arrays.items()}
    out = {}
    for g in inputs:
        a = arrays[g.name]
        if a.ndim == 4 and tuple(a.shape[1:]) != g.shape[1:] and (a.shape[0], *a.shape[2:], a.shape[1]) == (
                a.shape[0], *g.shape[1:]):
            a = a.transpose(0, 2, 3, 1)  # NCHW data, NHWC input: its own layout
        if tuple(a.shape[1:]) != g.shape[1:] or len(a) == 0:
            raise VariantBuildError(f"{what} {Path(path).name}: {g.name!r} has shape {list(a.shape)}; the input takes "
                                    f"{list(g.shape)}")
        out[g.name] = np.ascontiguousarray(a, dtype=g.dtype)
    n = min(len(a) for a in out.values())
    return {k: a[:n] for k, a in out.items()}


def batches(rows: Mapping[str, "np.ndarray"], inputs: Sequence[GraphInput]) -> list[Feed]:
    """Rows in feeds of each input's batch size (the first input's sets the count): a tail
    shorter than one batch is dropped, fewer rows than one batch are tiled to fill it."""
    import numpy as np

    batch = {g.name: g.shape[0] for g in inputs}
    full = {}
    for g in inputs:
        a = rows[g.name]
        if len(a) < batch[g.name]:
            a = np.resize(a, (batch[g.name], *a.shape[1:]))
        full[g.name] = a
    count = min(len(a) // batch[n] for n, a in full.items())
    return [{n: a[i * batch[n] : (i + 1) * batch[n]] for n, a in full.items()} for i in range(count)]


def describe(inputs: Sequence[GraphInput]) -> str:
    """``"input [1, 3, 8, 8] float32"`` or, for several, ``"2 inputs: a [1, 4] float32, b [...] int64"``."""
    parts = [f"{g.name} {list(g.shape)} {g.dtype}" for g in inputs]
    return parts[0] if len(parts) == 1 else name_list(parts)
