"""What precision a model already is: float32, float16, or already quantized.

A model that arrives quantized (QDQ pairs, QOperator ops, integer ops, ``com.microsoft``
quantized ops; a ``.tflite`` file with int8 tensors) or in float16 cannot be quantized or
converted again, and is not an fp32 reference either. The one rule (docs/variants.md):

- every recipe that starts from the model's precision (``fp32``, ``fp16``, the ``int8-*``
  recipes, ``ov-int8``, the ``tflite-*`` recipes) refuses such a step input with a one-line
  reason (``refusal``), checked by the builder before the step runs;
- the model is measured as it is by ``as-is`` (an ONNX model) or ``tflite-as-is`` (a
  ``.tflite`` model), and the variant's recorded precision is the one found here
  (``int8``, ``fp16``), never ``fp32``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ONNX quantization, by the form it takes; op types in any domain (com.microsoft included).
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})
QOPERATOR_OPS = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSoftmax", "QLinearReduceMean",
    "QLinearWhere", "QLinearConvTranspose", "QGemm", "QAttention", "QEmbedLayerNormalization",
})  # fmt: skip
INTEGER_OPS = frozenset({
    "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM",
    "MatMulNBits", "MatMulBnb4", "GatherBlockQuantized",
})  # fmt: skip

AS_IS = "as-is"
TFLITE_AS_IS = "tflite-as-is"


@dataclass(frozen=True)
class Found:
    """``precision`` ("fp32", "fp16", "int8") and, when not fp32, what shows it (one phrase)."""

    precision: str
    evidence: str | None = None

    @property
    def is_float32(self) -> bool:
        return self.precision == "fp32"


def _nodes(graph: Any) -> Iterator[Any]:
    """Every node of ``graph`` and of its subgraphs (If/Loop/Scan bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _nodes(attr.g)
            for g in attr.graphs:
                yield from _nodes(g)


def _quantized_op(op_type: str) -> bool:
    return (op_type in QDQ_OPS or op_type in QOPERATOR_OPS or op_type in INTEGER_OPS
            or op_type.startswith(("QLinear", "QOrdered")))  # fmt: skip


def onnx_precision(model: Any) -> Found:
    """The precision of an ONNX ``ModelProto`` (or the file at a path)."""
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    ops = Counter(n.op_type for n in _nodes(model.graph) if _quantized_op(n.op_type))
    if ops:
        qdq = sum(c for op, c in ops.items() if op in QDQ_OPS)
        kinds = []
        if qdq:
            kinds.append(f"QDQ, {qdq} QuantizeLinear/DequantizeLinear nodes")
        other = [f"{op} x{c}" for op, c in ops.most_common() if op not in QDQ_OPS]
        if other:
            kinds.append(", ".join(other[:3]) + (", ..." if len(other) > 3 else ""))
        return Found("int8", "already quantized: " + "; ".join(kinds))
    f16 = f32 = 0
    for t in model.graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        if t.data_type == onnx.TensorProto.FLOAT16:
            f16 += n
        elif t.data_type == onnx.TensorProto.FLOAT:
            f32 += n
    if f16 > f32:
        return Found("fp16", f"already float16: {f16:,} of its {f16 + f32:,} float weights are float16")
    return Found("fp32")


def tflite_precision(path: Path) -> Found:
    """The precision of a ``.tflite`` file: int8 when any tensor is an integer type with
    quantization scales (full-integer, or int8 weights behind a dynamic-range model), fp16
    when its float weights are float16, else fp32."""
    from harness.variants.tflite_file import _load, _names, _schema

    schema = _schema()
    model = _load(path)
    types = _names(schema.TensorType)
    quantized = Counter()
    f16 = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            kind = types.get(t.type, "?")
            q = t.quantization
            if kind in ("INT8", "UINT8", "INT16", "INT4") and q is not None and q.scale is not None and len(q.scale):
                quantized[kind] += 1
            elif kind == "FLOAT16":
                f16 += 1
    if quantized:
        what = ", ".join(f"{c} {k.lower()} tensors" for k, c in quantized.most_common())
        return Found("int8", f"already quantized: {what} with quantization scales")
    if f16:
        return Found("fp16", f"already float16: {f16} float16 tensors")
    return Found("fp32")


def refusal(label: str, found: Found, tflite: bool = False, target: str | None = None) -> str:
    """The one-line reason recipe ``label`` (making ``target`` precision) gives for a model
    that is not float32."""
    as_is = TFLITE_AS_IS if tflite else AS_IS
    if target in (None, "fp32"):
        return (f"the model is not float32 ({found.evidence}); measure it as it is with the {as_is!r} recipe, "
                f"which records its own precision ({found.precision})")
    if target == "int8":
        why = "quantizing it again is not supported" if found.precision == "int8" else \
            f"quantizing an {found.precision} model is not supported (it needs the float32 model)"
    elif target == found.precision:
        why = f"it is {target} already"
    else:
        why = f"converting an {found.precision} model to {target} is not supported (it needs the float32 model)"
    return f"refused: the model is {found.evidence}; {why}; measure it as it is with the {as_is!r} recipe"
