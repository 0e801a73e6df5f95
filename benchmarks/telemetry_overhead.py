#!/usr/bin/env python
"""Telemetry overhead: does the power sampler running beside the timed loop move the p50?

The agent's own ``run_job`` measures a small CNN (generated here with ``onnx.helper``, no
download) under ONNX Runtime, fresh session and fresh timed window per measurement, with
telemetry OFF (``power.source: none``) and ON (the real ``ina3221`` source reading a fake
Jetson hwmon tree in a temp dir, at the default 50 ms period; with ``--source auto`` the
board's real source instead). Measurements are interleaved A B B A per round
(docs/measurement.md, trap 2) inside one process, so this VM's speed-regime switches
hit both arms alike; the verdict is the median of the per-round ratios ON/OFF of the p50s
(target <= 1.01). Each window's drift (spread of its 0.5 s stretch medians) is printed so
a round that straddled a regime switch can be told apart.

    .venv/bin/python benchmarks/telemetry_overhead.py [--rounds 8] [--min-s 2] [--threads 1]
        [--size tiny|small] [--sample-ms 50] [--source fake-ina3221|auto] [--pairs N]

``--pairs N`` adds a sharper in-process check: one session, alternating 0.5 s blocks of
the agent's ``timed_loop`` with the sampler off and on.

Exit status 0 whatever the verdict.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devices.agent.measure import Deadline, run_job  # noqa: E402
from devices.agent.runtimes import RUNTIMES  # noqa: E402
from devices.agent.spec import parse_spec  # noqa: E402
from devices.agent.telemetry.session import JobTelemetry  # noqa: E402
from devices.agent.telemetry.settings import parse_telemetry  # noqa: E402

SHAPE = [1, 1, 28, 28]


# (first conv channels, second conv channels, second conv stride): ~30 us and ~0.3 ms on one x86 core
SIZES = {"tiny": (16, 32, 2), "small": (32, 64, 1)}


def write_model(path: Path, size: str = "tiny") -> Path:
    """Conv 1->c1 3x3, ReLU, Conv c1->c2 3x3, ReLU, Flatten, Gemm -> 10."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c1, c2, stride = SIZES[size]
    side = 28 if stride == 1 else 13
    rng = np.random.RandomState(0)
    inits = [
        numpy_helper.from_array(rng.randn(c1, 1, 3, 3).astype(np.float32) * 0.3, "W1"),
        numpy_helper.from_array(rng.randn(c2, c1, 3, 3).astype(np.float32) * 0.1, "W2"),
        numpy_helper.from_array(rng.randn(c2 * side * side, 10).astype(np.float32) * 0.01, "W3"),
        numpy_helper.from_array(np.zeros(10, np.float32), "B3"),
    ]
    pads2 = [1, 1, 1, 1] if stride == 1 else [0, 0, 0, 0]
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], strides=[stride, stride], pads=pads2),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W3", "B3"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "cnn-" + size, [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def fake_jetson(root: Path) -> Path:
    """An Orin NX-like INA3221 hwmon tree plus a thermal zone and meminfo."""
    files = {
        "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_label": "VDD_IN",
        "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_input": "5000",
        "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input": "1060",
        "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in2_label": "VDD_CPU_GPU_CV",
        "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in2_input": "5000",
        "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr2_input": "155",
        "sys/class/thermal/thermal_zone0/type": "cpu-thermal",
        "sys/class/thermal/thermal_zone0/temp": "47937",
        "proc/meminfo": "MemTotal: 15757312 kB\nMemAvailable: 9270000 kB\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


def drift(samples_ns: List[int], chunk_s: float = 0.5) -> float:
    """max/min - 1 of the medians of consecutive ~chunk_s stretches of one window."""
    chunks: List[float] = []
    lo, acc = 0, 0
    for i, v in enumerate(samples_ns):
        acc += v
        if acc >= chunk_s * 1e9:
            chunks.append(statistics.median(samples_ns[lo:i + 1]))
            lo, acc = i + 1, 0
    return max(chunks) / min(chunks) - 1 if len(chunks) > 1 else 0.0


def measure(model: Path, args: argparse.Namespace, on: bool, root: Optional[str]) -> Dict[str, Any]:
    spec = parse_spec({
        "protocol": 1, "job_id": "telemetry-overhead", "runtime": "onnxruntime",
        "artifact": {"path": str(model), "format": "onnx"}, "input": {"shape": SHAPE, "dtype": "float32"},
        "measure": {"warmup_iters": 10, "warmup_s": 0.5, "min_iters": 200, "min_s": args.min_s,
                    "threads": args.threads, "timeout_s": 600, "quiet": None},
    })
    if on:
        source = "ina3221" if args.source == "fake-ina3221" else args.source
        settings = parse_telemetry({"power": {"source": source}, "sample_ms": args.sample_ms, "idle_s": 0})
        tel = JobTelemetry(settings, root=root or "/")
    else:
        tel = JobTelemetry(parse_telemetry({"power": {"source": "none"}, "idle_s": 0}))
    runtime = RUNTIMES["onnxruntime"]({}, args.threads)
    res = run_job(spec, runtime, RUNTIMES["onnxruntime"].probe(), lambda phase: None, Deadline(600), None, tel)
    window = res["telemetry"]["power"]["window"] or {}
    return {"p50_ms": res["latency"]["p50_ms"], "mean_ms": res["latency"]["mean_ms"],
            "p99_ms": res["latency"]["p99_ms"], "n": res["latency"]["n"], "drift": drift(res["samples_ns"]),
            "samples": window.get("n_samples"), "source": res["power_source"], "reason": res["power_reason"]}


def blocks(model: Path, args: argparse.Namespace, root: Optional[str]) -> None:
    """One ORT session; alternating 0.5 s blocks of the agent's ``timed_loop`` with the
    sampler OFF and ON (A B B A ...): session-to-session noise removed, the sampler alone."""
    from devices.agent.measure import make_input, timed_loop
    from devices.agent.telemetry import pick_power
    from devices.agent.telemetry.sampler import Sampler

    rt = RUNTIMES["onnxruntime"]({}, args.threads)
    rt.load(str(model))
    rt.prepare(make_input(tuple(SHAPE), "float32", 0))
    fn = rt.infer_fn()
    source, reason, _ = pick_power("ina3221" if args.source == "fake-ina3221" else args.source, root=root or "/")
    if source is None:
        print("no power source: %s" % reason)
        return
    timed_loop(fn, 100, 1.0, None, Deadline(600))  # warm-up
    p50: Dict[bool, List[float]] = {False: [], True: []}
    for i in range(args.pairs):
        for on in ((False, True, True, False) if i % 2 == 0 else (True, False, False, True)):
            sampler = Sampler(source, args.sample_ms / 1e3) if on else None
            if sampler:
                sampler.start()
            samples, _ = timed_loop(fn, 10, 0.5, None, Deadline(600))
            if sampler:
                sampler.stop()
            p50[on].append(statistics.median(samples) / 1e6)
    ratios = [a / b for a, b in zip(p50[True], p50[False])]
    print("blocks: %d x 0.5 s per arm; median p50 OFF %.4f ms, ON %.4f ms; median per-pair ratio ON/OFF %.4f "
          "(min %.4f, max %.4f)" % (len(p50[True]), statistics.median(p50[False]), statistics.median(p50[True]),
                                    statistics.median(ratios), min(ratios), max(ratios)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--min-s", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1, help="inference threads; 0: the runtime's default")
    ap.add_argument("--sample-ms", type=float, default=50.0)
    ap.add_argument("--source", default="fake-ina3221", help="fake-ina3221 (default) or a real source name / auto")
    ap.add_argument("--size", default="tiny", choices=sorted(SIZES), help="tiny (~30 us) or small (~0.3 ms) CNN")
    ap.add_argument("--pairs", type=int, default=0,
                    help="also run N A-B-B-A groups of 0.5 s blocks in one session (the sampler alone)")
    args = ap.parse_args()
    args.threads = args.threads or None

    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        model = write_model(Path(tmp) / "cnn.onnx", args.size)
        root = str(fake_jetson(Path(tmp) / "root")) if args.source == "fake-ina3221" else None
        print("python %s, onnxruntime %s, %s, %s CNN, threads=%s, window >= %g s, sample period %g ms, source %s"
              % (platform.python_version(), onnxruntime.__version__, platform.machine(), args.size, args.threads,
                 args.min_s, args.sample_ms, args.source))
        measure(model, args, True, root)  # one throw-away run: imports, allocator, caches
        ratios: List[float] = []
        offs: List[float] = []
        ons: List[float] = []
        print("round  order  off_p50_ms  on_p50_ms  ratio   off_drift on_drift  samples/window")
        for r in range(args.rounds):
            order = (False, True, True, False) if r % 2 == 0 else (True, False, False, True)
            got: Dict[bool, List[Dict[str, Any]]] = {False: [], True: []}
            for on in order:
                got[on].append(measure(model, args, on, root))
            off = statistics.median(m["p50_ms"] for m in got[False])
            on_ = statistics.median(m["p50_ms"] for m in got[True])
            ratios.append(on_ / off)
            offs.append(off)
            ons.append(on_)
            print("%5d  %s  %10.4f  %9.4f  %.4f  %8.1f%% %7.1f%%  %s" % (
                r + 1, "ABBA" if r % 2 == 0 else "BAAB", off, on_, on_ / off,
                100 * max(m["drift"] for m in got[False]), 100 * max(m["drift"] for m in got[True]),
                ",".join(str(m["samples"]) for m in got[True])))
        last = got[True][-1]
        print("power source in the ON arm: %s%s" % (last["source"], "" if last["source"] else " (%s)" % last["reason"]))
        print("median p50 OFF %.4f ms, ON %.4f ms; median per-round ratio ON/OFF %.4f (min %.4f, max %.4f); "
              "target <= 1.01: %s" % (statistics.median(offs), statistics.median(ons), statistics.median(ratios),
                                      min(ratios), max(ratios),
                                      "PASS" if statistics.median(ratios) <= 1.01 else "MISS"))
        if args.pairs:
            blocks(model, args, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
