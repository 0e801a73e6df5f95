"""A multi-input model's jobs send every input: the build reads each input's name, shape and
dtype from the graph, the payload carries them, ``make_spec`` puts them on the wire."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devices.agent.spec import Artifact, ModelInput, NamedInput, parse_spec
from harness.coordinator.protocol import encode_spec, make_spec
from harness.records import Job, JobSettings
from harness.variants.feeds import GraphInput

SHAPES = {"x": (4, 1, 8, 8), "k": (4, 1)}
JOB = Job("two", "as-is", "local", "onnxruntime", JobSettings())


def write_two_inputs(path: Path) -> Path:
    """``x`` [N, 1, 8, 8] float and ``k`` [N, 1] int64 (a symbolic batch the suite's shapes size)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.ones((64, 3), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "W"], ["g"]),
         helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT), helper.make_node("Add", ["g", "kf"], ["y"])],
        "two", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8]),
                helper.make_tensor_value_info("k", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory, artifact_cache):  # noqa: ANN001, ANN201
    from harness.hashing import sha256_file
    from harness.variants.build import build_variant
    from harness.zoo.source import SourceModel

    path = write_two_inputs(tmp_path_factory.mktemp("two") / "two.onnx")
    source = SourceModel(name="two", input_shape=SHAPES["x"], input_shapes=dict(SHAPES), content_hash=sha256_file(path),
                         onnx_path=path, kind="onnx")
    return build_variant(source, "as-is", artifact_cache)


def test_the_build_records_every_input_with_its_dtype(variant) -> None:  # noqa: ANN001
    assert [(g.name, g.dtype, g.shape) for g in variant.inputs] == [("x", "float32", (4, 1, 8, 8)),
                                                                    ("k", "int64", (4, 1))]


def test_make_spec_sends_both_inputs_of_a_two_input_variant(variant) -> None:  # noqa: ANN001
    from harness.coordinator.builds import Built
    from harness.coordinator.sweep import _payloads

    payload = _payloads({("two", "as-is"): Built(variant, {})})[("two", "as-is")]
    assert payload.inputs == variant.inputs
    spec = make_spec(JOB, "j", Artifact(str(variant.path), "onnx", variant.sha256), payload.input_shape, "/e.npz",
                     inputs=payload.inputs)
    raw = json.loads(encode_spec(spec))
    assert raw["protocol"] == 4
    assert raw["inputs"] == [{"name": "x", "shape": [4, 1, 8, 8], "dtype": "float32"},
                             {"name": "k", "shape": [4, 1], "dtype": "int64"}]
    assert raw["input"] == {"shape": [4, 1, 8, 8], "dtype": "float32"}  # the first, for the eval set's x
    assert parse_spec(raw) == spec
    assert spec.inputs == (NamedInput("x", (4, 1, 8, 8)), NamedInput("k", (4, 1), "int64"))


def test_a_one_input_spec_stays_what_older_agents_read() -> None:
    """One input: no ``inputs`` key, protocol 1, the graph's dtype on ``input`` (float32 where unknown)."""
    art = Artifact("/a.onnx", "onnx", "0" * 64)
    plain = json.loads(encode_spec(make_spec(JOB, "j", art, (1, 3, 8, 8), None)))
    fp32 = json.loads(encode_spec(make_spec(JOB, "j", art, (1, 3, 8, 8), None,
                                            inputs=[GraphInput("images", "float32", (1, 3, 8, 8), ("N", 3, 8, 8))])))
    assert plain == fp32 and "inputs" not in plain and plain["protocol"] == 1
    ids = make_spec(JOB, "j", art, (2, 16), None, inputs=[GraphInput("ids", "int64", (2, 16), (2, 16))])
    assert ids.input == ModelInput((2, 16), "int64") and ids.inputs == () and ids.protocol == 1


def test_an_input_dtype_the_agent_cannot_feed_fails_on_the_coordinator() -> None:
    from harness.errors import AgentError

    spec = make_spec(JOB, "j", Artifact("/a.onnx"), (1, 4), None,
                     inputs=[GraphInput("a", "float32", (1, 4), (1, 4)), GraphInput("b", "uint16", (1, 2), (1, 2))])
    with pytest.raises(AgentError, match=r"spec key inputs\[1\]\.dtype must be one of"):
        encode_spec(spec)


def test_a_variant_cached_before_inputs_were_recorded_reads_its_graph(variant) -> None:  # noqa: ANN001
    from harness.variants.build import _recorded_inputs
    from harness.zoo.source import SourceModel

    source = SourceModel(name="two", input_shape=SHAPES["x"], input_shapes=dict(SHAPES), content_hash="t" * 64,
                         onnx_path=variant.path, kind="onnx")
    assert _recorded_inputs({"format": "onnx"}, variant.path, source) == variant.inputs
    assert _recorded_inputs({"format": "onnx", "inputs": None}, variant.path, source) is None  # recorded: unresolvable
    assert _recorded_inputs({"format": "tflite"}, variant.path, source) is None
