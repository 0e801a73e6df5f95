"""What the harness reads from and writes into a ``.tflite`` flatbuffer, without an interpreter.

The schema bindings ship with the runtime package (``ai_edge_litert.schema_py_generated``,
a core dependency), so a coordinator reads a user's model (its input shape, its size
statistics) and tags the files it makes (``edge_harness.*`` metadata entries, as the int8
ONNX recipes tag theirs) without the converter extra.

The statistics are the counterparts of ``onnx_stats``, so a tflite variant and the ONNX
variants of one model compare in the dashboard:

- ``params``: elements of the constant tensors of weight types (float32/16, int8/uint8,
  int16), plus int32 constants in the bias slot of CONV_2D, DEPTHWISE_CONV_2D,
  FULLY_CONNECTED and TRANSPOSE_CONV (int8 models keep biases in int32); shape and
  permutation constants do not count.
- ``macs``: CONV_2D (out elements x kh x kw x cin), DEPTHWISE_CONV_2D (out elements x kh
  x kw), FULLY_CONNECTED (out elements x input depth), BATCH_MATMUL (out elements x
  reduction length), from the tensors' static shapes; other ops count 0.
- ``sparsity``: the exactly-zero fraction of those ops' weights (through a DEQUANTIZE of a
  float16 or int8 constant); biases left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

METADATA_PREFIX = "edge_harness."
_WEIGHT_TYPES = {"FLOAT32", "FLOAT16", "INT8", "UINT8", "INT16"}
_BIAS_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
_WEIGHT_SLOT = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1, "BATCH_MATMUL": 1}


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as exc:
        raise ConfigError(f"reading a .tflite model needs the LiteRT runtime: pip install ai-edge-litert "
                          f"({type(exc).__name__}: {exc})") from None
    return schema_py_generated


def _load(path: Path) -> Any:
    """The model as schema objects, every buffer's bytes in ``data``: writers of big files
    (ai-edge-quantizer among them) store constants after the flatbuffer and point at them
    with ``offset``/``size`` (valid when offset > 1), which a repack would leave dangling."""
    import numpy as np

    schema = _schema()
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConfigError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    for buf in model.buffers or []:
        if buf.offset and buf.offset > 1:
            buf.data = np.frombuffer(data, dtype=np.uint8, count=buf.size, offset=buf.offset)
            buf.offset = buf.size = 0
    return model


def _names(enum: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def input_shapes(path: Path) -> list[tuple[int, ...]]:
    """Static shapes of the main subgraph's inputs, in signature order."""
    model = _load(path)
    sg = model.subgraphs[0]
    return [tuple(int(d) for d in sg.tensors[i].shape) for i in sg.inputs]


def read_metadata(path: Path) -> dict[str, str]:
    """The model's metadata entries (``min_runtime_version``, ours, ...) as text."""
    model = _load(path)
    out = {}
    for entry in model.metadata or []:
        raw = model.buffers[entry.buffer].data
        text = bytes(raw if raw is not None else b"").rstrip(b"\0")
        out[entry.name.decode() if isinstance(entry.name, bytes) else entry.name] = text.decode(errors="replace")
    return out


def finalize(path: Path, entries: Mapping[str, str]) -> None:
    """Tag a file we made with ``edge_harness.<key>`` metadata entries (the interpreter
    ignores metadata) and shorten the converter's tensor names, in place.

    litert-torch names each tensor after every fused torch module's full class path
    (``litert_torch._convert...ChannelLastIOWrapper/harness.zoo.nets.DigitsCNN_wrapped/
    torch.nn.modules...ReLU_2;;...``, ~600 bytes a tensor): a third of a small model's file,
    which would make a tflite variant look bigger than the same weights in ONNX. Each name
    becomes its first module's path as ``named_modules`` spells it (``features.3.1.2``, with
    ``;1``, ``;2`` on repeats: ai-edge-quantizer needs unique names); signatures address
    tensors by index, so nothing that runs the model reads the names.
    """
    import flatbuffers
    import numpy as np

    schema = _schema()
    model = _load(path)
    for sg in model.subgraphs:
        seen: dict[str, int] = {}
        for tensor in sg.tensors:
            name = _short_name(tensor.name.decode(errors="replace") if tensor.name else "")
            seen[name] = seen.get(name, 0) + 1
            tensor.name = name if seen[name] == 1 else f"{name};{seen[name] - 1}"  # unique: the quantizer keys on names
    for key, value in entries.items():
        buf = schema.BufferT()
        buf.data = np.frombuffer(value.encode(), dtype=np.uint8)
        model.buffers.append(buf)
        meta = schema.MetadataT()
        meta.name = METADATA_PREFIX + key
        meta.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), meta]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    Path(path).write_bytes(builder.Output())


def _short_name(name: str) -> str:
    """``a.Root/b.Class_attr/c.Other_0;...`` -> ``attr.0``; names without module paths are kept."""
    first = name.split(";", 1)[0]
    parts = first.split("/")
    leaves = [p.rsplit(".", 1)[1] for p in parts if "." in p]
    attrs = [leaf.split("_", 1)[1] for leaf in leaves if "_" in leaf]
    if parts[0].endswith("ChannelLastIOWrapper") and attrs:
        attrs = attrs[1:]  # the layout wrapper's own "wrapped" level
    return ".".join(attrs) if len(parts) > 1 and attrs else first


def tflite_stats(path: Path) -> dict[str, Any]:
    """``{"params", "macs", "sparsity", "opset"}`` of the file (``opset`` is None: TFLite has
    per-op versions, not an opset)."""
    import numpy as np

    schema = _schema()
    model = _load(path)
    types = _names(schema.TensorType)
    builtins = _names(schema.BuiltinOperator)
    sg = model.subgraphs[0]
    codes = [builtins.get(max(c.builtinCode, c.deprecatedBuiltinCode), "?") for c in model.operatorCodes]
    producer = {o: op for op in sg.operators for o in op.outputs}

    def const(i: int) -> np.ndarray | None:
        t = sg.tensors[i]
        data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        if data is None or len(data) == 0:
            return None
        return np.frombuffer(bytes(data), dtype=np.dtype(types[t.type].lower()))

    def shape(i: int) -> tuple[int, ...]:
        s = sg.tensors[i].shape
        return tuple(int(d) for d in s) if s is not None else ()

    counted: set[int] = set()
    params = 0
    for idx, t in enumerate(sg.tensors):
        if types[t.type] in _WEIGHT_TYPES and const(idx) is not None:
            counted.add(idx)
            params += math.prod(shape(idx))
    macs = 0
    weights: set[int] = set()
    for op in sg.operators:
        name = codes[op.opcodeIndex]
        ins = [int(i) for i in op.inputs]
        out = shape(op.outputs[0]) if len(op.outputs) else ()
        if name in _BIAS_OPS and len(ins) > 2 and ins[2] >= 0 and ins[2] not in counted and const(ins[2]) is not None:
            counted.add(ins[2])
            params += math.prod(shape(ins[2]))
        if name not in _WEIGHT_SLOT or len(ins) < 2:
            continue
        w = shape(ins[1])
        if name == "CONV_2D" and len(w) == 4:
            macs += math.prod(out) * math.prod(w[1:])
        elif name == "DEPTHWISE_CONV_2D" and len(w) == 4:
            macs += math.prod(out) * w[1] * w[2]
        elif name == "FULLY_CONNECTED" and len(w) == 2:
            macs += math.prod(out) * w[1]
        elif name == "BATCH_MATMUL":
            macs += math.prod(out) * shape(ins[0])[-1]
        src = ins[1]
        feeding = producer.get(src)
        if feeding is not None and codes[feeding.opcodeIndex] == "DEQUANTIZE":
            src = int(feeding.inputs[0])
        if const(src) is not None:
            weights.add(src)
    total = zeros = 0
    for i in sorted(weights):
        arr = const(i)
        assert arr is not None
        total += arr.size
        zeros += int(arr.size - np.count_nonzero(arr))
    return {"params": params, "macs": macs, "sparsity": round(zeros / total, 6) if total else 0.0, "opset": None}
