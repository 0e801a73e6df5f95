"""Shared helpers for the agent tests: tiny ONNX models, eval sets, specs, agent runs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[3]

INPUT_SHAPE = [4, 1, 8, 8]  # batch 4: the eval set's tail (N % 4) is dropped
FEATURES, CLASSES = 64, 10
SHIFT = 100.0  # write_two_inputs: k = 1 adds this to class 0's logit, so the prediction becomes 0


def classifier_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    return rng.randn(FEATURES, CLASSES).astype(np.float32), rng.randn(CLASSES).astype(np.float32)


def write_classifier(path: Path, seed: int = 0) -> Path:
    """Flatten + Gemm 64 -> 10 with a dynamic batch; labels of ``make_eval_set`` are its argmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = classifier_weights(seed)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
        ],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for JetPack 5's ORT, new enough for OpenVINO
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_two_inputs(path: Path) -> Path:
    """The agent tests' classifier on ``x`` [N, 1, 8, 8] float, plus ``k`` [N, 1] int64: logits +
    k * SHIFT on class 0, so a row fed k = 1 predicts class 0 and one fed k = 0 its true label."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = classifier_weights()
    onehot = np.zeros((1, CLASSES), np.float32)
    onehot[0, 0] = SHIFT
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["g"]),
            helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["kf", "ONEHOT"], ["shift"]),
            helper.make_node("Add", ["g", "shift"], ["logits"]),
        ],
        "two_inputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8]),
         helper.make_tensor_value_info("k", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"), numpy_helper.from_array(onehot, "ONEHOT")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_eval_set(path: Path, n: int = 362, seed: int = 0, margin: float = 1.0) -> Path:
    """x ~ N(0, 1) and y = argmax(x @ W + b), keeping only samples whose top-2 logit gap
    exceeds ``margin``, so float rounding in any f32 runtime cannot flip a label."""
    w, b = classifier_weights(seed)
    rng = np.random.RandomState(seed + 1)
    xs, ys = [], []
    while len(xs) < n:
        x = rng.standard_normal(FEATURES).astype(np.float32)
        logits = x @ w + b
        top2 = np.sort(logits)[-2:]
        if top2[1] - top2[0] > margin:
            xs.append(x.reshape(1, 8, 8))
            ys.append(int(np.argmax(logits)))
    np.savez(path, x=np.stack(xs), y=np.array(ys, dtype=np.int64))
    return path


def make_spec(artifact: Path, runtime: str = "onnxruntime", **over: Any) -> dict:
    """A fast spec (0.3 s window); keyword arguments replace top-level keys or, for
    ``measure``/``runtime_options``, update them."""
    spec: dict = {
        "protocol": 1,
        "job_id": "job-" + runtime,
        "runtime": runtime,
        "artifact": {"path": str(artifact), "format": "onnx", "sha256": None},
        "input": {"shape": list(INPUT_SHAPE), "dtype": "float32"},
        "eval": None,
        "measure": {"warmup_iters": 5, "warmup_s": 0.05, "min_iters": 20, "min_s": 0.3,
                    "max_iters": None, "timeout_s": 60, "threads": 1, "seed": 0, "quiet": None},
        "runtime_options": {},
    }
    for key, value in over.items():
        if key in ("measure", "runtime_options") and isinstance(value, dict):
            spec[key] = dict(spec[key], **value)
        else:
            spec[key] = value
    return spec


def write_spec(tmp_path: Path, spec: dict, name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def sleep_job_output(tmp_path: Path, latency_ms: float, **measure: Any) -> str:
    """The stdout of one ``measure`` of the sleep runtime in this process (it must succeed)."""
    from devices.agent.cli import main

    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    spec = make_spec(model, runtime="sleep", runtime_options={"latency_ms": latency_ms}, measure=measure)
    out = io.StringIO()
    assert main(["measure", str(write_spec(tmp_path, spec))], out=out) == 0
    return out.getvalue()


def run_agent(argv: list[str], timeout: float = 120) -> tuple[int, list[dict], str]:
    """Run the agent as a process from the repo root; (exit code, events, stderr).

    Every stdout line must be a JSON object: that is the agent's contract.
    """
    proc = subprocess.run(
        [sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(isinstance(e, dict) and "event" in e for e in events), proc.stdout
    return proc.returncode, events, proc.stderr


def by_event(events: list[dict], name: str) -> list[dict]:
    return [e for e in events if e["event"] == name]
