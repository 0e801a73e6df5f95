"""``fp16``: the graph's float32 tensors and ops in float16; inputs and outputs stay float32.

The conversion is ONNX Runtime's ``onnxruntime.transformers.float16.convert_float_to_float16``
(a maintained fork of onnxconverter-common's converter that also rewrites Cast nodes, keeps
Resize's scales float32 and tracks initializers shared by float32 and float16 nodes), with
``keep_io_types=True``: a Cast after each float input and before each float output, so
callers feed and read float32 exactly as for the fp32 variant. What stays float32:

- ops in ``FP32_OPS``: the converter's default block list (ops without float16 kernels,
  NonMaxSuppression, TopK, RoiAlign, Range, CumSum, Min, Max, Upsample) plus Resize, and
  the suite's ``keep_fp32_ops``;
- shape and index arithmetic (``shape_arithmetic``): nodes whose values derive from a
  ``Shape``/``Size`` of a tensor and not from the input data (anchor grids, strides,
  sizes cast to float in detection heads), where float16's 11-bit mantissa would round
  coordinates; plus the suite's ``keep_fp32_nodes``.

Casts are inserted where the two meet, and no Cast is left producing float where the graph
now carries float16 (the converter rewrites ``Cast(to=float)`` of converted nodes to
``float16``). Weights outside float16's range are clamped (the count is logged).

The build then checks the result (``check_against_fp32``): it must load in ONNX Runtime,
and on seeded synthetic inputs (every input, in its own dtype and shape) each float output
must be finite and within ``tolerance`` of the fp32 graph's (relative L2 error
``|a - b| / (|a| + 1e-3 sqrt(n))``); integer outputs must keep their dtype and shape. A
failure names the node ONNX Runtime rejects, or the output that diverges and the first node
(in graph order) whose float output diverges.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.errors import VariantBuildError
from harness.variants.base import Recipe, RecipeOptions

if TYPE_CHECKING:
    import numpy as np

    from harness.zoo.source import SourceModel

log = logging.getLogger(__name__)

# Kept in float32 beyond the converter's DEFAULT_OP_BLOCK_LIST.
EXTRA_FP32_OPS = ("Resize", "Upsample", "Range", "NonMaxSuppression", "TopK", "RoiAlign", "GridSample")
SHAPE_OPS = frozenset({"Shape", "Size"})
CHECK_SEED = 0
CHECK_BATCHES = 2


class Fp16Options(RecipeOptions):
    keep_fp32_ops: tuple[str, ...] = ()  # op types also kept in float32
    keep_fp32_nodes: tuple[str, ...] = ()  # node names also kept in float32
    tolerance: float = Field(0.05, gt=0)  # largest relative L2 error of a float output against fp32


class Fp16(Recipe):
    name = "fp16"
    stage = "onnx"
    precision = "fp16"
    Options = Fp16Options
    # Checked with onnxruntime 1.32 and OpenVINO 2026.4 on CPU (digits-cnn, mobilenetv2-224):
    # ORT's CPU provider runs the float16 graph, and OpenVINO compiles it under its default
    # bf16 precision and under INFERENCE_PRECISION_HINT=f32 (digits accuracy equal to fp32
    # in all three), so any runtime may consume it.
    runtimes = None
    revision = 2  # ORT's converter, the float32 block list, shape arithmetic, the check against fp32

    def tool_versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def apply(self, inp: Path, workdir: Path, source: "SourceModel") -> Path:
        import onnx

        model = onnx.load(str(inp))
        out = workdir / "fp16.onnx"
        onnx.save(convert(model, self.options.keep_fp32_ops, self.options.keep_fp32_nodes), str(out))
        check_against_fp32(Path(inp), out, source, self.options.tolerance)
        return out


def fp32_ops(extra: Iterable[str] = ()) -> set[str]:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return {*DEFAULT_OP_BLOCK_LIST, *EXTRA_FP32_OPS, *extra}


def convert(model: Any, keep_ops: Iterable[str] = (), keep_nodes: Iterable[str] = ()) -> Any:
    """``model`` (changed in place) in float16 with float32 I/O; see the module doc."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    name_nodes(model.graph)
    ops = fp32_ops(keep_ops)
    nodes = shape_arithmetic(model.graph) | set(keep_nodes)
    nodes |= constants_for(model.graph, nodes, ops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=sorted(ops),
                                             node_block_list=sorted(nodes))
    clipped = [w for w in caught if "truncated" in str(w.message) or "clamp" in str(w.message).lower()]
    if clipped:
        log.info("fp16: %d float32 tensors had values outside float16's range (clamped)", len(clipped))
    for w in caught:
        if w not in clipped:
            log.debug("fp16: %s", w.message)
    drop_cast_round_trips(converted.graph)
    sort_topologically(converted.graph)
    return converted


def drop_cast_round_trips(graph: Any) -> int:
    """Remove ``Cast(to=float)`` of a ``Cast(to=float16)`` of a float32 tensor: the converter
    passes every float output of a float32 node through float16, even into the next float32
    node, which would round (or overflow) exactly the values kept in float32. Consumers of
    the round trip read the float32 tensor itself; returns the number of Casts removed."""
    from onnx import TensorProto

    def to(node: Any) -> int | None:
        return next((a.i for a in node.attribute if a.name == "to"), None)

    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.value_info, *graph.output]}
    types.update({t.name: t.data_type for t in graph.initializer})
    producer = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    dropped = set()
    direct = 0
    for node in graph.node:
        if node.op_type != "Cast" or to(node) != TensorProto.FLOAT:
            continue
        first = producer.get(node.input[0])
        if first is None or first.op_type != "Cast" or to(first) != TensorProto.FLOAT16:
            continue
        if types.get(first.input[0]) != TensorProto.FLOAT:
            continue
        if node.output[0] in outputs:  # a graph output keeps its name: a float-to-float Cast of the source
            node.input[0] = first.input[0]
            direct += 1
        else:
            rename[node.output[0]] = first.input[0]
            dropped.add(id(node))
    if not rename and not direct:
        return 0
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    kept = [n for n in graph.node if id(n) not in dropped]
    used = {i for n in kept for i in _consumed(n)} | outputs
    kept = [n for n in kept if not (n.op_type == "Cast" and to(n) == TensorProto.FLOAT16 and n.output[0] not in used
                                    and types.get(n.input[0]) == TensorProto.FLOAT)]
    removed = len(graph.node) - len(kept)
    del graph.node[:]
    graph.node.extend(kept)
    return removed + direct


def name_nodes(graph: Any) -> None:
    """Give every unnamed node a unique name (the block list matches nodes by name)."""
    taken = {n.name for n in graph.node if n.name}
    for i, node in enumerate(graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def shape_arithmetic(graph: Any) -> set[str]:
    """Names of the nodes computing on tensor shapes rather than data: fed (through any
    chain) by a ``Shape``/``Size`` node and by no tensor that depends on a graph input's
    values. ``Shape``/``Size`` themselves are not among them (they read no values, and
    keeping them float32 would cast the tensor they measure)."""
    init = {t.name for t in graph.initializer}
    data = {i.name for i in graph.input if i.name not in init}  # depends on input values
    shaped: set[str] = set()  # depends on shapes only (and constants)
    out = set()
    for node in graph.node:  # ONNX keeps nodes in topological order
        ins = [i for i in node.input if i]
        if node.op_type in SHAPE_OPS:
            shaped.update(node.output)
        elif any(i in data for i in ins):
            data.update(node.output)
        elif any(i in shaped for i in ins):
            shaped.update(node.output)
            out.add(node.name)
    return out


def constants_for(graph: Any, nodes: set[str], ops: set[str]) -> set[str]:
    """``Constant`` nodes whose every consumer stays float32 (in ``nodes`` or of a type in
    ``ops``): their values stay float32 too, rather than being rounded to float16 and back."""
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in _consumed(node):
            consumers.setdefault(i, []).append(node)
    out = set()
    for node in graph.node:
        if node.op_type != "Constant" or not node.output:
            continue
        users = consumers.get(node.output[0], [])
        if users and all(u.name in nodes or u.op_type in ops for u in users):
            out.add(node.name)
    return out


def sort_topologically(graph: Any) -> None:
    """Reorder ``graph.node`` so every node follows its producers (the converter appends the
    Casts it inserts at the end); a graph with a cycle is left as it is."""
    from collections import deque

    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in _consumed(n) if x in producer} - {i} for i, n in enumerate(nodes)]
    users: list[list[int]] = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    left = [len(d) for d in deps]
    ready = deque(i for i, c in enumerate(left) if c == 0)
    order = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for u in users[i]:
            left[u] -= 1
            if left[u] == 0:
                ready.append(u)
    if len(order) != len(nodes):
        return
    del graph.node[:]
    graph.node.extend(nodes[i] for i in order)


def _consumed(node: Any) -> set[str]:
    """Tensors a node reads, its subgraphs' outer-scope references included."""
    names = {i for i in node.input if i}
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            inner = {o for n in g.node for o in n.output} | {i.name for i in g.input} | {t.name for t in g.initializer}
            names |= {x for n in g.node for x in _consumed(n)} - inner
    return names


# --- the check against fp32 --------------------------------------------------------------


def _session(path: Path | bytes, basic: bool = False) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if basic:  # intermediate tensors stay as they are named in the graph
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(path if isinstance(path, bytes) else str(path), so,
                                providers=["CPUExecutionProvider"])


def _ort_failure(what: str, exc: Exception, fp16: Path) -> VariantBuildError:
    """ONNX Runtime's complaint about the float16 graph, naming the node it points at."""
    import onnx

    text = str(exc)
    node = _node_in(text)
    where = f" at {_describe_node(onnx.load(str(fp16), load_external_data=False), node)}" if node else ""
    return VariantBuildError(f"{what}{where}: {type(exc).__name__}: {text}", detail=text)


def _node_in(message: str) -> str | None:
    import re

    for pattern in (r"of node \(([^)]*)\)", r"node with name '([^']*)'", r"[Nn]ode \(([^)]*)\)",
                    r"In Node, \(\"([^\"]*)\"", r"Node:([^\s,]+)"):
        m = re.search(pattern, message)
        if m and m.group(1):
            return m.group(1)
    return None


def _describe_node(model: Any, name: str) -> str:
    op = next((n.op_type for n in model.graph.node if n.name == name), None)
    return f"node {name!r}" + (f" ({op})" if op else "")


def relative_error(a: "np.ndarray", b: "np.ndarray") -> float:
    """``|a - b| / (|a| + 1e-3 sqrt(n))`` in float64 (L2 norms); inf where b is not finite but a is."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    finite = np.isfinite(a)
    if not np.array_equal(finite, np.isfinite(b)) or not np.array_equal(a[~finite], b[~finite]):
        return math.inf
    a, b = a[finite], b[finite]
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + 1e-3 * math.sqrt(max(a.size, 1))))


def check_feeds(fp32: Path, source: "SourceModel") -> list[dict[str, "np.ndarray"]]:
    """``CHECK_BATCHES`` seeded synthetic feeds for every input of the graph at ``fp32``."""
    import onnx

    from harness.variants.feeds import batches, source_inputs, synthetic_rows

    inputs = source_inputs(onnx.load(str(fp32), load_external_data=False), source)
    n = CHECK_BATCHES * max(g.shape[0] for g in inputs) if inputs else 0
    return batches(synthetic_rows(inputs, n, CHECK_SEED), inputs) if inputs else [{}]


def check_against_fp32(fp32: Path, fp16: Path, source: "SourceModel", tolerance: float) -> None:
    """``VariantBuildError`` unless the float16 graph loads in ONNX Runtime and matches the
    float32 one on seeded inputs (see the module doc)."""
    import numpy as np

    feeds = check_feeds(fp32, source)
    try:
        s16 = _session(fp16)
    except Exception as exc:
        raise _ort_failure("ONNX Runtime cannot load the float16 graph", exc, fp16) from exc
    try:
        s32 = _session(fp32)
    except Exception as exc:
        raise VariantBuildError(f"cannot check the float16 graph: ONNX Runtime cannot load the float32 one: "
                                f"{type(exc).__name__}: {exc}") from exc
    names = [o.name for o in s32.get_outputs()]
    worst: tuple[float, str] = (0.0, "")
    for feed in feeds:
        want = s32.run(names, feed)
        try:
            got = s16.run(names, feed)
        except Exception as exc:
            raise _ort_failure("the float16 graph fails to run", exc, fp16) from exc
        for name, a, b in zip(names, want, got):
            a, b = np.asarray(a), np.asarray(b)
            if a.dtype != b.dtype:
                raise VariantBuildError(f"output {name!r} is {b.dtype} in the float16 graph, {a.dtype} in fp32")
            if not np.issubdtype(a.dtype, np.floating):
                if a.shape != b.shape:
                    raise VariantBuildError(f"output {name!r} has shape {list(b.shape)} in the float16 graph, "
                                            f"{list(a.shape)} in fp32")
                continue
            err = relative_error(a, b)
            worst = max(worst, (err, name))
    err, name = worst
    if err > tolerance:
        what = ("is not finite where fp32's is" if math.isinf(err)
                else f"relative error {err:.3g} > tolerance {tolerance}")
        first = first_divergence(fp32, fp16, feeds[0], tolerance)
        raise VariantBuildError(f"output {name!r} differs from fp32 on seeded inputs ({what})"
                                + (f"; first diverging: {first}" if first else "")
                                + "; keep it in float32 with keep_fp32_ops / keep_fp32_nodes")
    log.info("fp16: outputs within %.3g of fp32 (worst: %s, %.3g)", tolerance, name or "-", err)


def first_divergence(fp32: Path, fp16: Path, feed: dict[str, "np.ndarray"], tolerance: float) -> str | None:
    """The first node (in the fp32 graph's order) whose float output differs from the same
    tensor of the float16 graph by more than ``tolerance``, as ``node 'x' (Op)``; None if
    none is found or the search itself fails."""
    import numpy as np
    import onnx

    try:
        m32 = onnx.shape_inference.infer_shapes(onnx.load(str(fp32)))
        m16 = onnx.load(str(fp16))
        types16 = {vi.name: vi for vi in [*m16.graph.value_info, *m16.graph.output]}
        float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
        vi32 = {vi.name: vi for vi in [*m32.graph.value_info, *m32.graph.output]}
        order = [(n, o) for n in m32.graph.node for o in n.output
                 if o in vi32 and o in types16
                 and vi32[o].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                 and types16[o].type.tensor_type.elem_type in float_types]
        if not order:
            return None
        wanted = [o for _, o in order]
        for model, table in ((m32, vi32), (m16, types16)):
            del model.graph.output[:]
            model.graph.output.extend(table[o] for o in wanted)
        a = _session(m32.SerializeToString(), basic=True).run(wanted, feed)
        b = _session(m16.SerializeToString(), basic=True).run(wanted, feed)
        for (node, _), x, y in zip(order, a, b):
            if relative_error(np.asarray(x), np.asarray(y)) > tolerance:
                return f"node {node.name!r} ({node.op_type})"
    except Exception as exc:  # a diagnosis only: the failure stands without it
        log.debug("fp16: first divergence not found: %s", exc)
    return None
