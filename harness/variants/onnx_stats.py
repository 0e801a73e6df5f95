"""Size statistics read from an ONNX graph: parameter count and MACs.

Both are approximations meant for comparing variants of one model, documented here:

- ``params``: elements of all initializers of a weight-like type (float, int8/uint8,
  int16/32, not int64 since those are shape constants). Quantization parameters
  (scales, zero points) count too; they add a few hundred elements.
- ``macs``: multiply-accumulates of Conv, ConvInteger, QLinearConv (out elements x
  weight elements per output channel) and Gemm, MatMul, MatMulInteger, QLinearMatMul
  (out elements x reduction length), using shapes from ONNX shape inference. Other ops
  (pooling, activations, element-wise adds, BatchNorm left unfused) are ignored; a node
  whose shapes are not known counts 0.
- ``sparsity``: the fraction of exactly-zero elements among the weight initializers of
  Conv, Gemm and MatMul (and their integer / QLinear forms; a weight behind a
  DequantizeLinear counts as its quantized initializer). Biases are left out. For
  quantized weights "zero" means the stored integer 0, which is the zero point of the
  symmetric int8 weights ONNX Runtime writes by default. Unstructured pruning shows here,
  not in ``params``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

_WEIGHT_TYPES = {1, 2, 3, 4, 5, 6, 10, 11, 16}  # float, uint8, int8, uint16, int16, int32, float16, double, bfloat16
# op type -> (index of the input holding the weight or B matrix, index of the A matrix)
_CONV = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL = {"Gemm": 0, "MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0}


def count_params(model: Any) -> int:
    return sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type in _WEIGHT_TYPES)


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for vi in [*g.input, *g.output, *g.value_info]:
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    for t in g.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes


def count_macs(model: Any) -> int:
    shapes = _shapes(model)
    total = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0]) if node.output else None
        if out is None:
            continue
        if node.op_type in _CONV:
            w = shapes.get(node.input[_CONV[node.op_type]])
            if w is not None:
                total += math.prod(out) * math.prod(w[1:])
        elif node.op_type in _MATMUL:
            a = shapes.get(node.input[_MATMUL[node.op_type]])
            if a is None:
                continue
            k = a[-1]
            if node.op_type == "Gemm" and any(at.name == "transA" and at.i for at in node.attribute):
                k = a[0]
            total += math.prod(out) * k
    return total


# op type -> indices of inputs that hold weights when they are initializers (biases left out)
_WEIGHT_INPUTS = {"Conv": (1,), "ConvInteger": (1,), "QLinearConv": (3,), "Gemm": (0, 1), "MatMul": (0, 1),
                  "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}


def weight_sparsity(model: Any) -> float:
    """Fraction of exactly-zero elements among Conv/Gemm/MatMul weight initializers."""
    import numpy as np
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    dequantized = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output}
    names: set[str] = set()
    for node in model.graph.node:
        for i in _WEIGHT_INPUTS.get(node.op_type, ()):
            if i < len(node.input):
                name = node.input[i]
                name = name if name in inits else dequantized.get(name, "")
                if name in inits:
                    names.add(name)
    total = zeros = 0
    for name in sorted(names):
        arr = numpy_helper.to_array(inits[name])
        total += arr.size
        zeros += int(arr.size - np.count_nonzero(arr))
    return round(zeros / total, 6) if total else 0.0


def onnx_stats(path: Path) -> dict[str, Any]:
    """``{"params", "macs", "sparsity", "opset"}`` of the file at ``path``."""
    import onnx

    model = onnx.load(str(path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"params": count_params(model), "macs": count_macs(model), "sparsity": weight_sparsity(model),
            "opset": opset}
