#!/usr/bin/env python
"""Harness overhead: does the device agent report the latency a bare loop would?

For each (model, runtime) configuration, three kinds of fresh processes measure the same
fp32 ONNX file with the same settings (runtime-default threads unless ``--threads``;
OpenVINO with PERFORMANCE_HINT LATENCY and INFERENCE_PRECISION_HINT f32):

- A: the real device agent (the zipapp the coordinator ships, ``python agent.pyz measure
  spec.json``, stdout piped as harness/transport/local.py does); its p50 is read from the
  ``result`` event.
- B: a bare loop in a fresh process of the same Python: ``sess.run(None, feed)`` (ONNX
  Runtime) or ``request.infer()`` on a request whose input tensor was set once
  (OpenVINO), each iteration timed with ``perf_counter_ns``, after the same warm-up and
  for the same window; the p50 of its samples. For OpenVINO, B then reads
  ``request.latency`` (OpenVINO's own timer, what benchmark_app reports) for a further
  ``--native-s`` window, apart from the timed one.
- C (OpenVINO only): OpenVINO's ``benchmark_app -hint latency -infer_precision f32``
  median (its sync API, one request, as its output says).

Runs are interleaved A B (C) | (C) B A | ... over ``--rounds`` rounds, each round covering
every configuration, and the verdict uses ratios measured side by side within a round
(docs/measurement.md, trap 2). This machine is shared and its 2 vCPUs change speed
regime every few seconds, so before every process the script waits (bounded) for others'
CPU use to drop, measures others' CPU use during the process, and measures how much each
A and B window drifted inside itself; rounds that stayed clean are summarised apart, and a
few extra rounds are run for configurations with too few clean ones (trap 4).

    .venv/bin/python benchmarks/overhead.py [--rounds 6] [--min-s 3] [--threads N] \
        [--models digits-cnn,mobilenetv2-224] [--runtimes onnxruntime,openvino] [--json F]

D, ``overhead.py loop-check [--pairs 16] [--block-s 0.3] [--threads N]``: one process per
configuration, one session built by the agent's own runtime class, alternating short
blocks of the agent's ``timed_loop`` and of the bare loop on that same session: the loop
and call-form overhead alone, free of process-to-process noise.

The bare-loop child is this same file run as ``overhead.py bare JSON`` (stdlib, numpy
and the runtime only). Exit status 0 whatever the verdict; nonzero only when a process
fails.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
BAND = (0.97, 1.03)
DEFAULT_CACHE = Path("~/.cache/edge-harness/bench-artifacts").expanduser()
OV_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}


# --------------------------------------------------------------------------- B: the bare loop
def bare_main(cfg: Dict[str, Any]) -> None:
    """Child process: load, warm up, time; print one JSON line. No harness code imported."""
    import numpy as np

    clock = time.perf_counter_ns
    shape = tuple(cfg["shape"])
    # The agent's input: standard normal of the real shape, seed 0 (measure.make_input).
    x = np.ascontiguousarray(np.random.RandomState(0).standard_normal(shape).astype("float32"))
    native: Optional[List[float]] = None
    extra: Dict[str, Any] = {}
    if cfg["runtime"] == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        if cfg["threads"] is not None:
            so.intra_op_num_threads = cfg["threads"]
        sess = ort.InferenceSession(cfg["model"], so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        run = sess.run

        def step() -> None:
            run(None, feed)

        extra["version"] = ort.__version__
    else:
        import openvino as ov

        core = ov.Core()
        config = dict(OV_CONFIG)
        if cfg["threads"] is not None:
            config["INFERENCE_NUM_THREADS"] = cfg["threads"]
        compiled = core.compile_model(core.read_model(cfg["model"]), "CPU", config)
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x))
        step = request.infer
        native = []
        extra["version"] = ov.get_version()
        for key in ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "ENABLE_CPU_PINNING", "INFERENCE_PRECISION_HINT"):
            try:
                extra[key] = str(compiled.get_property(key))
            except Exception:  # property absent in this version
                extra[key] = None

    # Warm-up as the agent does it: the first inference, then until BOTH warmup_iters
    # (counting the first) and warmup_s since the first inference started are reached.
    w0 = clock()
    step()
    n = 1
    warm_ns = int(cfg["warmup_s"] * 1e9)
    while n < cfg["warmup_iters"] or clock() - w0 < warm_ns:
        step()
        n += 1

    samples: List[int] = []
    append = samples.append
    min_ns = int(cfg["min_s"] * 1e9)
    start = clock()
    while True:
        t0 = clock()
        step()
        t1 = clock()
        append(t1 - t0)
        if len(samples) >= cfg["min_iters"] and t1 - start >= min_ns:
            break
    if native is not None:
        # After the timed window, apart from it: OpenVINO's own per-request timer, read the
        # way benchmark_app's sync loop reads it (infer, then request.latency).
        n_start = clock()
        while clock() - n_start < cfg["native_s"] * 1e9:
            step()
            native.append(request.latency)
    ms = np.asarray(samples, dtype=np.float64) / 1e6
    out = {
        "p50_ms": float(np.median(ms)),
        "mean_ms": float(ms.mean()),
        "n": len(samples),
        "drift": drift(samples),
        "warmup_iters": n,
        "native_p50_ms": float(np.median(native)) if native else None,
        **extra,
    }
    print(json.dumps(out), flush=True)


def drift(samples_ns: List[int], chunk_s: float = 0.5) -> float:
    """How much the latency level moved inside one timed window: the medians of
    consecutive ~``chunk_s`` stretches, max/min - 1. This machine's vCPUs switch between
    speed regimes every few seconds (up to 4x, see RESULTS.md); a process that straddled a
    switch has a large drift and its p50 stands for neither regime."""
    import numpy as np

    chunks: List[float] = []
    lo, acc, limit = 0, 0, int(chunk_s * 1e9)
    for i, v in enumerate(samples_ns):
        acc += v
        if acc >= limit:
            chunks.append(float(np.median(samples_ns[lo : i + 1])))
            lo, acc = i + 1, 0
    if len(samples_ns) - lo > 0 and (acc >= limit / 2 or not chunks):
        chunks.append(float(np.median(samples_ns[lo:])))
    return max(chunks) / min(chunks) - 1 if chunks and min(chunks) > 0 else 0.0


# --------------------------------------------------------------------------- D: in-process loop check
def loop_child(cfg: Dict[str, Any]) -> None:
    """Child process: ONE runtime session built by the agent's own runtime class; blocks of
    the agent's ``timed_loop(infer_fn)`` alternate (A B B A ...) with blocks of the bare loop
    calling that same session the bare way. Process placement, load and regime switches
    then hit both alike; what remains is the loop and call-form overhead."""
    import numpy as np

    from devices.agent.measure import Deadline, make_input, timed_loop
    from devices.agent.runtimes import RUNTIMES

    options = {"inference_precision": "f32"} if cfg["runtime"] == "openvino" else {}
    rt = RUNTIMES[cfg["runtime"]](options, cfg["threads"])
    rt.load(cfg["model"])
    x = make_input(tuple(cfg["shape"]), "float32", 0)
    rt.prepare(x)
    agent_fn = rt.infer_fn()
    if cfg["runtime"] == "onnxruntime":
        run, feed = rt._sess.run, {rt._sess.get_inputs()[0].name: x}

        def step() -> None:
            run(None, feed)
    else:
        step = rt._request.infer
    clock = time.perf_counter_ns
    block_ns = int(cfg["block_s"] * 1e9)
    deadline = Deadline(3600.0)

    def bare_block() -> List[int]:
        samples: List[int] = []
        start = clock()
        while True:
            t0 = clock()
            step()
            t1 = clock()
            samples.append(t1 - t0)
            if len(samples) >= 10 and t1 - start >= block_ns:
                return samples

    def agent_block() -> List[int]:
        return timed_loop(agent_fn, 10, cfg["block_s"], None, deadline)[0]

    end = clock() + int(cfg["warmup_s"] * 1e9)
    while clock() < end:
        agent_fn()
    pairs = []
    for i in range(cfg["pairs"]):
        order = ("A", "B") if i % 2 == 0 else ("B", "A")
        got = {side: float(np.median(agent_block() if side == "A" else bare_block())) for side in order}
        pairs.append((got["A"], got["B"]))
    rt.close()
    ratios = [a / b for a, b in pairs]
    print(json.dumps({"A_p50_ms": statistics.median(a for a, _ in pairs) / 1e6,
                      "B_p50_ms": statistics.median(b for _, b in pairs) / 1e6,
                      "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                      "pairs": len(pairs)}), flush=True)


def loop_check(argv: List[str]) -> int:
    """``overhead.py loop-check``: the in-process comparison for every configuration."""
    p = argparse.ArgumentParser(prog="overhead.py loop-check", description=loop_child.__doc__)
    p.add_argument("--pairs", type=int, default=16, help="A/B block pairs per configuration")
    p.add_argument("--block-s", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--models", default="digits-cnn,mobilenetv2-224")
    p.add_argument("--runtimes", default="onnxruntime,openvino")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    artifacts = resolve_artifacts(models, args.cache_dir)
    print("```\n%s\n```\n" % " ".join([".venv/bin/python benchmarks/overhead.py loop-check"] + argv))
    print("%s, threads %s, %d pairs of %g s blocks, one process per configuration\n" % (
        _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "runtime default" if args.threads is None else args.threads, args.pairs, args.block_s))
    print("| model | runtime | agent timed_loop p50 ms | bare loop p50 ms | ratio med [min, max] | in 0.97-1.03 |"
          " others' CPU |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        for runtime in runtimes:
            cfg = {"runtime": runtime, "model": artifacts[model]["path"], "shape": artifacts[model]["shape"],
                   "threads": args.threads, "block_s": args.block_s, "pairs": args.pairs, "warmup_s": 1.0}
            wait_quiet(0.15, 10.0)
            with Contention() as cont:
                proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "loop-child", json.dumps(cfg)],
                                      capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600,
                                      cwd=REPO)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError("loop check failed:\n%s" % proc.stderr[-3000:])
            r = json.loads(lines[-1])
            print("| %s | %s | %s | %s | %.3f [%.3f, %.3f] | %s | %.0f%% |" % (
                model, runtime, fmt_ms(r["A_p50_ms"]), fmt_ms(r["B_p50_ms"]), r["ratio"], r["ratio_min"],
                r["ratio_max"], "yes" if BAND[0] <= r["ratio"] <= BAND[1] else "NO", 100 * cont.others), flush=True)
    return 0


# --------------------------------------------------------------------------- helpers
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def cpu_snap() -> Tuple[int, int]:
    """(total, idle) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    return sum(vals[:8]), vals[3] + (vals[4] if len(vals) > 4 else 0)


def cpu_busy(interval_s: float = 0.25) -> float:
    """Fraction of all CPUs busy over ``interval_s``, sampled while we run nothing."""
    t0, i0 = cpu_snap()
    time.sleep(interval_s)
    t1, i1 = cpu_snap()
    total = t1 - t0
    return 0.0 if total <= 0 else 1.0 - (i1 - i0) / total


def wait_quiet(threshold: float, max_wait_s: float) -> Tuple[float, float]:
    """Sample others' CPU use until it is below ``threshold`` or ``max_wait_s`` passed;
    return (last busy fraction, seconds waited). Like cooling a board down to a band
    before the next job (trap 3), against someone else on the machine (trap 4)."""
    t0 = time.perf_counter()
    busy = cpu_busy()
    while busy > threshold and time.perf_counter() - t0 < max_wait_s:
        busy = cpu_busy(1.0)
    return busy, time.perf_counter() - t0


class Contention:
    """Others' CPU use DURING one child process: all CPUs' busy time over the child's
    wall time, minus the CPU time the child itself used (RUSAGE_CHILDREN delta), as a
    fraction of the machine (1.0 = every core busy with someone else's work)."""

    def __enter__(self) -> "Contention":
        import resource

        self._ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._snap = cpu_snap()
        self._t = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        import resource

        wall = time.perf_counter() - self._t
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        t1, i1 = cpu_snap()
        busy_s = ((t1 - self._snap[0]) - (i1 - self._snap[1])) / HZ
        child_s = (ru.ru_utime - self._ru.ru_utime) + (ru.ru_stime - self._ru.ru_stime)
        self.child_cpu_s = child_s
        self.others = max(0.0, busy_s - child_s) / (wall * NCPU) if wall > 0 else 0.0


def top_cpu_processes(k: int = 3) -> str:
    """The k processes using most CPU right now (for the contention note)."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True, timeout=5)
        return "; ".join(" ".join(line.split()) for line in out.stdout.splitlines()[1 : k + 1])
    except Exception:
        return "?"


def resolve_artifacts(models: List[str], cache_dir: Path) -> Dict[str, Dict[str, Any]]:
    """fp32 ONNX file and input shape of each built-in model (built once, then cached)."""
    from harness.config.suite import BuiltinModel
    from harness.variants import ArtifactCache, build_variant
    from harness.zoo import resolve_model

    cache = ArtifactCache(cache_dir)
    out = {}
    for name in models:
        variant = build_variant(resolve_model(BuiltinModel(builtin=name), cache), "fp32", cache)
        out[name] = {"path": str(variant.path), "shape": list(variant.input_shape)}
    return out


def run_agent(agent: Path, workdir: Path, model: Dict[str, Any], runtime: str, ms: Dict[str, Any]) -> Dict[str, Any]:
    """A: one real agent process; its ``result`` event."""
    spec = {
        "protocol": 1,
        "job_id": "overhead-%s" % runtime,
        "runtime": runtime,
        "artifact": {"path": model["path"], "format": "onnx"},
        "input": {"shape": model["shape"], "dtype": "float32"},
        "measure": {
            "warmup_iters": ms["warmup_iters"],
            "warmup_s": ms["warmup_s"],
            "min_iters": ms["min_iters"],
            "min_s": ms["min_s"],
            "timeout_s": 300,
            "threads": ms["threads"],
            "quiet": None,  # the loop's cost alone: no board-state reading before the window
        },
        "runtime_options": {"inference_precision": "f32"} if runtime == "openvino" else {},
    }
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    # As harness/transport/local.py runs it: the zipapp under the same Python, stdout piped.
    proc = subprocess.run(
        [sys.executable, str(agent), "measure", str(spec_path)],
        capture_output=True, text=True, cwd=workdir, stdin=subprocess.DEVNULL, timeout=400,
    )
    wall = time.perf_counter() - t0
    result = None
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event.get("event") == "result":
            result = event
    if proc.returncode != 0 or result is None:
        raise RuntimeError("agent failed (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    lat = result["latency"]
    return {
        "p50_ms": lat["p50_ms"], "mean_ms": lat["mean_ms"], "n": lat["n"], "cv": lat["cv"],
        "drift": drift(result["samples_ns"]),
        "threads": result["threads"], "precision": result["precision"],
        "options": result["runtime"]["options"], "wall_s": wall,
    }


def run_bare(model: Dict[str, Any], runtime: str, ms: Dict[str, Any]) -> Dict[str, Any]:
    """B: the bare loop in a fresh process of the same Python."""
    cfg = dict(ms, runtime=runtime, model=model["path"], shape=model["shape"])
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "bare", json.dumps(cfg)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=400,
    )
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError("bare loop failed (rc %s):\n%s" % (proc.returncode, proc.stderr[-2000:]))
    return dict(json.loads(lines[-1]), wall_s=wall)


_UNITS = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}


def run_benchmark_app(model: Dict[str, Any], t_s: float, folder: Path, threads: Optional[int]) -> Dict[str, Any]:
    """C: OpenVINO's benchmark_app, latency hint, f32; median from its printed statistics
    (its JSON report rounds latencies to 0.01 ms, too coarse for a 25 us model)."""
    exe = Path(sys.executable).parent / "benchmark_app"
    folder.mkdir(parents=True, exist_ok=True)
    # benchmark_app only takes -nthreads with -hint none; one stream, one request and the
    # sync API are then what -hint latency chooses on this machine.
    hint = ["-hint", "latency"] if threads is None else [
        "-hint", "none", "-nthreads", str(threads), "-nstreams", "1", "-nireq", "1", "-api", "sync"]
    argv = [str(exe), "-m", model["path"], "-d", "CPU", *hint, "-t", "%g" % t_s,
            "-infer_precision", "f32", "-report_type", "no_counters", "-report_folder", str(folder), "-json_stats"]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=400)
    wall = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    m = re.search(r"Median:\s+([\d.]+)\s*(ms|us|ns|s)\b", text)
    if proc.returncode != 0 or not m:
        raise RuntimeError("benchmark_app failed (rc %s):\n%s" % (proc.returncode, text[-3000:]))

    def grab(pattern: str) -> Optional[str]:
        g = re.search(pattern, text)
        return g.group(1) if g else None

    return {
        "p50_ms": float(m.group(1)) * _UNITS[m.group(2)],
        "api": "sync" if "inference synchronously" in text else ("async" if "asynchronously" in text else "?"),
        "nireq": grab(r"OPTIMAL_NUMBER_OF_INFER_REQUESTS:\s*(\d+)"),
        "nstreams": grab(r"\bNUM_STREAMS:\s*(\d+)"),
        "threads": grab(r"INFERENCE_NUM_THREADS:\s*(\d+)"),
        "pinning": grab(r"ENABLE_CPU_PINNING:\s*(\w+)"),
        "count": grab(r"Count:\s+(\d+)"),
        "wall_s": wall,
    }


def machine_facts() -> Dict[str, Any]:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = {}
    try:
        for line in open("/proc/meminfo"):
            k, v = line.split(":", 1)
            if k in ("MemTotal", "MemAvailable"):
                mem[k] = int(v.split()[0]) // 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "mem_total_mb": mem.get("MemTotal"),
            "mem_available_mb": mem.get("MemAvailable"), "python": platform.python_version(),
            "kernel": platform.release()}


# --------------------------------------------------------------------------- the driver
def ratio_stats(values: List[float]) -> Optional[Tuple[float, float, float]]:
    return (statistics.median(values), min(values), max(values)) if values else None


def summarize(rows: List[Dict[str, Any]], clean_below: float, max_drift: float) -> Dict[str, Any]:
    """Per configuration: medians of each side's p50 and the per-round ratios, over all
    rounds and over the clean ones (nobody else on the CPUs, no regime switch inside A or B)."""
    for r in rows:
        r["clean"] = (r["others_max"] <= clean_below
                      and all(r[side]["drift"] <= max_drift for side in ("A", "B")))
    a = [r["A"]["p50_ms"] for r in rows]
    b = [r["B"]["p50_ms"] for r in rows]
    ab = [x / y for x, y in zip(a, b)]
    clean = [x for x, r in zip(ab, rows) if r["clean"]]
    out: Dict[str, Any] = {
        "rounds": len(rows), "clean_rounds": len(clean),
        "A_p50_ms": statistics.median(a), "B_p50_ms": statistics.median(b),
        "A_over_B": ratio_stats(ab), "A_over_B_clean": ratio_stats(clean),
        # best round of each side: both sides' fastest regime, if each met it once
        "A_over_B_best": min(a) / min(b),
        # run-to-run spread of each side alone: the noise the band has to live with
        "A_spread": max(a) / min(a) - 1, "B_spread": max(b) / min(b) - 1,
        "others_max": max(r["others_max"] for r in rows),
        "waited_s": sum(r[side]["waited_s"] for r in rows for side in r["order"]),
    }
    verdict = out["A_over_B_clean"] or out["A_over_B"]
    out["in_band"] = BAND[0] <= verdict[0] <= BAND[1]
    out["verdict_on"] = "clean" if out["A_over_B_clean"] else "all"
    nat = [r["B"].get("native_p50_ms") for r in rows]
    if all(v is not None for v in nat):
        out["B_native_p50_ms"] = statistics.median(nat)
        out["A_over_B_native"] = statistics.median([x / y for x, y in zip(a, nat)])
    if all("C" in r for r in rows):
        c = [r["C"]["p50_ms"] for r in rows]
        ac = [x / y for x, y in zip(a, c)]
        ac_clean = [x for x, r in zip(ac, rows) if r["others_max"] <= clean_below and r["A"]["drift"] <= max_drift]
        out.update(C_p50_ms=statistics.median(c), A_over_C=ratio_stats(ac), A_over_C_clean=ratio_stats(ac_clean),
                   A_over_C_best=min(a) / min(c), C_info=rows[0]["C"])
    out["A_info"] = {k: rows[0]["A"][k] for k in ("threads", "precision", "options")}
    out["B_info"] = {k: v for k, v in rows[0]["B"].items()
                     if k not in ("p50_ms", "mean_ms", "n", "wall_s", "native_p50_ms", "warmup_iters", "drift", "others",
                                  "child_cpu_s", "busy_before", "waited_s", "busy_who")}
    return out


def fmt_ms(v: float) -> str:
    return "%.4f" % v if v < 1 else "%.3f" % v


def fmt_ratio(r: Optional[Tuple[float, float, float]]) -> str:
    return "-" if r is None else "%.3f [%.3f, %.3f]" % r


def render(summaries: Dict[Tuple[str, str], Dict[str, Any]], command: str, facts: Dict[str, Any],
           started: str, elapsed_s: float, args: argparse.Namespace) -> Tuple[str, str]:
    head = ["model", "runtime", "rounds (clean)", "A agent p50 ms", "B bare p50 ms", "A/B all rounds",
            "A/B clean rounds", "A/B best", "in 0.97-1.03", "C benchmark_app p50 ms", "A/C all rounds",
            "A/C clean rounds", "B native p50 ms", "others' CPU max"]
    body = []
    for (model, runtime), s in summaries.items():
        row = [model, runtime, "%d (%d)" % (s["rounds"], s["clean_rounds"]), fmt_ms(s["A_p50_ms"]),
               fmt_ms(s["B_p50_ms"]), fmt_ratio(s["A_over_B"]), fmt_ratio(s["A_over_B_clean"]),
               "%.3f" % s["A_over_B_best"], ("yes" if s["in_band"] else "NO") + " (%s)" % s["verdict_on"]]
        if "C_p50_ms" in s:
            row += [fmt_ms(s["C_p50_ms"]), fmt_ratio(s["A_over_C"]), fmt_ratio(s["A_over_C_clean"])]
        else:
            row += ["-", "-", "-"]
        row += [fmt_ms(s["B_native_p50_ms"]) if "B_native_p50_ms" in s else "-", "%.0f%%" % (100 * s["others_max"])]
        body.append(row)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    table = "\n".join(["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head] + body])
    md = ["```", command, "```", "",
          "%s, %d CPUs (%s), %s MB available of %s MB, Python %s; %g s windows after %g s warm-up, threads %s;"
          " took %.0f s" % (started, facts["nproc"], facts["cpu"], facts["mem_available_mb"], facts["mem_total_mb"],
                            facts["python"], args.min_s, args.warmup_s,
                            "runtime default" if args.threads is None else args.threads, elapsed_s), "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in body]
    notes = [
        "- A = the agent zipapp's p50; B = bare loop p50 (fresh process, same Python); C = benchmark_app median.",
        "- A/B, A/C: ratio of p50s measured side by side in the same round, median [min, max] over rounds;"
        " order alternates A B (C) | (C) B A. A/B best: best A p50 over best B p50.",
        "- clean round: others used <= %.0f%% of the CPUs during each of its processes, and neither A nor B"
        " drifted more than %.0f%% inside its window (medians of 0.5 s stretches); the verdict uses the"
        " clean rounds when there are any." % (100 * args.clean_below, 100 * args.max_drift),
        "- others' CPU: all CPUs' busy time minus the measured child's own CPU time, over its wall time.",
        "- B native: OpenVINO's own request.latency, read in a %g s window after B's timed window (what"
        " benchmark_app reports): it leaves out the Python call into the runtime." % args.native_s,
    ]
    for (model, runtime), s in summaries.items():
        extra = ""
        if "A_over_B_native" in s:
            extra = "; A / B native %.3f" % s["A_over_B_native"]
        notes.append("- %s/%s: agent threads %s, precision %s; bare %s; run-to-run spread (max/min-1) A %.0f%%,"
                     " B %.0f%%; waited %.0f s for a quiet machine%s"
                     % (model, runtime, s["A_info"]["threads"], s["A_info"]["precision"],
                        json.dumps(s["B_info"]), 100 * s["A_spread"], 100 * s["B_spread"], s["waited_s"], extra))
        if "C_info" in s:
            ci = s["C_info"]
            notes.append("  - benchmark_app: api %s, %s infer request(s), %s stream(s), %s threads, pinning %s;"
                         " A/C best %.3f" % (ci["api"], ci["nireq"], ci["nstreams"], ci["threads"], ci["pinning"],
                                             s["A_over_C_best"]))
    md += [""] + notes
    return table, "\n".join(md)


def run_round(rnd: int, model: str, runtime: str, args: argparse.Namespace, agent: Path, work: Path,
              artifact: Dict[str, Any], ms: Dict[str, Any], wait_left: List[float]) -> Dict[str, Any]:
    sides = ["A", "B"] + (["C"] if runtime == "openvino" and args.bench_app_t > 0 else [])
    order = sides if rnd % 2 == 0 else sides[::-1]  # A B C | C B A | ...
    row: Dict[str, Any] = {"round": rnd, "order": "".join(order)}
    for side in order:
        before, waited = wait_quiet(args.quiet, min(args.max_wait, wait_left[0]))
        wait_left[0] = max(0.0, wait_left[0] - waited)
        with Contention() as cont:
            if side == "A":
                res = run_agent(agent, work, artifact, runtime, ms)
            elif side == "B":
                res = run_bare(artifact, runtime, ms)
            else:
                res = run_benchmark_app(artifact, args.bench_app_t, work / "report", args.threads)
        res.update(others=cont.others, child_cpu_s=cont.child_cpu_s, busy_before=before, waited_s=waited)
        if max(before, cont.others) > args.quiet:
            res["busy_who"] = top_cpu_processes()
        row[side] = res
    row["others_max"] = max(row[side]["others"] for side in order)
    line = "round %d %-16s %-12s %-3s A %s B %s A/B %.3f" % (
        rnd + 1, model, runtime, row["order"], fmt_ms(row["A"]["p50_ms"]), fmt_ms(row["B"]["p50_ms"]),
        row["A"]["p50_ms"] / row["B"]["p50_ms"])
    if "C" in row:
        line += "  C %s A/C %.3f" % (fmt_ms(row["C"]["p50_ms"]), row["A"]["p50_ms"] / row["C"]["p50_ms"])
    line += "  | drift A %.0f%% B %.0f%% | others %s" % (
        100 * row["A"]["drift"], 100 * row["B"]["drift"],
        " ".join("%s %.0f%%" % (side, 100 * row[side]["others"]) for side in row["order"]))
    print(line, file=sys.stderr, flush=True)
    return row


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bare"]:
        bare_main(json.loads(argv[1]))
        return 0
    if argv[:1] == ["loop-child"]:
        loop_child(json.loads(argv[1]))
        return 0
    if argv[:1] == ["loop-check"]:
        return loop_check(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=6, help="planned rounds; each runs every configuration once per side")
    p.add_argument("--extra-rounds", type=int, default=4,
                   help="at most this many extra rounds in all, for configurations with fewer than half their"
                        " rounds clean, while --budget-s allows")
    p.add_argument("--budget-s", type=float, default=360.0, help="no extra round starts after this many seconds")
    p.add_argument("--min-s", type=float, default=3.0, help="timed window of A and B (s)")
    p.add_argument("--min-iters", type=int, default=200)
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--warmup-iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads for all sides (default: the runtime's own default)")
    p.add_argument("--models", default="digits-cnn,mobilenetv2-224")
    p.add_argument("--runtimes", default="onnxruntime,openvino")
    p.add_argument("--bench-app-t", type=float, default=5.0, help="benchmark_app -t (s); 0 skips C")
    p.add_argument("--native-s", type=float, default=1.0, help="B's extra OpenVINO request.latency window (s)")
    p.add_argument("--quiet", type=float, default=0.15,
                   help="before each process, wait until others use less than this share of the CPUs")
    p.add_argument("--max-wait", type=float, default=10.0, help="longest wait for --quiet before one process (s)")
    p.add_argument("--max-wait-total", type=float, default=60.0, help="longest such waiting in all (s)")
    p.add_argument("--clean-below", type=float, default=0.05,
                   help="a clean round: others used at most this share of the CPUs during each of its processes")
    p.add_argument("--max-drift", type=float, default=0.10, help="... and neither A nor B drifted more than this")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--json", type=Path, default=None, help="also write every round's raw numbers here")
    args = p.parse_args(argv)
    command = "benchmarks/overhead.py " + " ".join(argv) if argv else "benchmarks/overhead.py"
    started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t_start = time.perf_counter()
    facts = machine_facts()

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    artifacts = resolve_artifacts(models, args.cache_dir)
    ms = {"warmup_iters": args.warmup_iters, "warmup_s": args.warmup_s, "min_iters": args.min_iters,
          "min_s": args.min_s, "threads": args.threads, "native_s": args.native_s}
    configs = [(m, r) for m in models for r in runtimes]
    rows: Dict[Tuple[str, str], List[Dict[str, Any]]] = {c: [] for c in configs}
    wait_left = [args.max_wait_total]

    from harness.coordinator.bundle import build_agent

    def is_clean(r: Dict[str, Any]) -> bool:
        return r["others_max"] <= args.clean_below and all(r[s]["drift"] <= args.max_drift for s in ("A", "B"))

    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        work = Path(tmp)
        agent = build_agent(work / "agent")
        for rnd in range(args.rounds):
            for model, runtime in configs:
                rows[(model, runtime)].append(
                    run_round(rnd, model, runtime, args, agent, work, artifacts[model], ms, wait_left))
        extra = 0
        while extra < args.extra_rounds and time.perf_counter() - t_start < args.budget_s:
            short = [c for c in configs if 2 * sum(is_clean(r) for r in rows[c]) < args.rounds]
            if not short:
                break
            c = min(short, key=lambda k: len(rows[k]))  # round robin over those still short
            rows[c].append(run_round(len(rows[c]), c[0], c[1], args, agent, work, artifacts[c[0]], ms, wait_left))
            extra += 1

    summaries = {c: summarize(rows[c], args.clean_below, args.max_drift) for c in configs}
    elapsed = time.perf_counter() - t_start
    table, md = render(summaries, ".venv/bin/python " + command, facts, started, elapsed, args)
    print(table)
    print()
    print(md)
    if args.json is not None:
        args.json.write_text(json.dumps({"command": command, "started": started, "facts": facts, "settings": ms,
                                         "rounds": {"%s/%s" % c: rows[c] for c in configs},
                                         "summary": {"%s/%s" % c: summaries[c] for c in configs}},
                                        indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
