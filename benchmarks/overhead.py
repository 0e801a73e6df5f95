#!/usr/bin/env python
"""Harness overhead: does the device agent report the latency a bare loop would?

For each (model, runtime) configuration, three kinds of fresh processes measure the same
fp32 ONNX file with the same settings (runtime-default threads; OpenVINO with
PERFORMANCE_HINT LATENCY and INFERENCE_PRECISION_HINT f32):

- A: the real device agent (the zipapp the coordinator ships, ``python agent.pyz measure
  spec.json``); its p50 is read from the ``result`` event on stdout.
- B: a bare loop in a fresh process of the same Python: ``sess.run(None, feed)`` (ONNX
  Runtime) or ``request.infer()`` on a request whose input tensor was set once
  (OpenVINO), each iteration timed with ``perf_counter_ns``, after the same warm-up and
  for the same window; the p50 of its samples. For OpenVINO the bare loop also records
  ``request.latency`` (OpenVINO's own native timer, read after the timed pair), which is
  what benchmark_app reports.
- C (OpenVINO only): OpenVINO's ``benchmark_app -hint latency`` median.

Runs are interleaved A B (C) | (C) B A | ... over ``--rounds`` rounds, each round covering
every configuration, so drift on this shared machine hits both sides alike
(shared/MEASUREMENT.md, trap 2). The verdict uses ratios taken inside one round (side by
side), summarised by their median, min and max over rounds. Before every process the
machine's CPU use by others is sampled for 250 ms (trap 4) and reported.

    .venv/bin/python benchmarks/overhead.py [--rounds 4] [--min-s 3] \
        [--models digits-cnn,mobilenetv2-224] [--runtimes onnxruntime,openvino]

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

        sess = ort.InferenceSession(cfg["model"], providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        run = sess.run

        def step() -> None:
            run(None, feed)

        extra["version"] = ort.__version__
    else:
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(cfg["model"]), "CPU", dict(OV_CONFIG))
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
    min_ns = int(cfg["min_s"] * 1e9)
    start = clock()
    if native is None:
        while True:
            t0 = clock()
            step()
            t1 = clock()
            samples.append(t1 - t0)
            if len(samples) >= cfg["min_iters"] and t1 - start >= min_ns:
                break
    else:
        while True:
            t0 = clock()
            step()
            t1 = clock()
            samples.append(t1 - t0)
            native.append(request.latency)  # ms, OpenVINO's own timer (benchmark_app's figure)
            if len(samples) >= cfg["min_iters"] and t1 - start >= min_ns:
                break
    ms = np.asarray(samples, dtype=np.float64) / 1e6
    out = {
        "p50_ms": float(np.median(ms)),
        "mean_ms": float(ms.mean()),
        "n": len(samples),
        "warmup_iters": n,
        "native_p50_ms": float(np.median(native)) if native else None,
        **extra,
    }
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------- helpers
def cpu_busy(interval_s: float = 0.25) -> float:
    """Fraction of all CPUs busy over ``interval_s`` (from /proc/stat), while we run nothing."""

    def snap() -> Tuple[int, int]:
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals[:8]), idle

    t0, i0 = snap()
    time.sleep(interval_s)
    t1, i1 = snap()
    total = t1 - t0
    return 0.0 if total <= 0 else 1.0 - (i1 - i0) / total


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
            "threads": None,
        },
        "runtime_options": {"inference_precision": "f32"} if runtime == "openvino" else {},
    }
    spec_path = workdir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    # As devices/transport/local.py runs it: the zipapp under the same Python, stdout piped.
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


def run_benchmark_app(model: Dict[str, Any], t_s: float, folder: Path) -> Dict[str, Any]:
    """C: OpenVINO's benchmark_app, latency hint, f32; median from its printed statistics
    (its JSON report rounds latencies to 0.01 ms, too coarse for a 25 us model)."""
    exe = Path(sys.executable).parent / "benchmark_app"
    folder.mkdir(parents=True, exist_ok=True)
    argv = [str(exe), "-m", model["path"], "-d", "CPU", "-hint", "latency", "-t", "%g" % t_s,
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
def summarize(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per configuration: medians of A and B (and C), per-round ratios' median/min/max."""
    a = [r["A"]["p50_ms"] for r in rows]
    b = [r["B"]["p50_ms"] for r in rows]
    ab = [x / y for x, y in zip(a, b)]
    out: Dict[str, Any] = {
        "rounds": len(rows),
        "A_p50_ms": statistics.median(a), "B_p50_ms": statistics.median(b),
        "A_over_B": statistics.median(ab), "A_over_B_min": min(ab), "A_over_B_max": max(ab),
        # run-to-run spread of each side alone: how much noise the band has to absorb
        "A_spread": max(a) / min(a) - 1, "B_spread": max(b) / min(b) - 1,
        "busy_max": max(r["busy_max"] for r in rows),
    }
    out["in_band"] = BAND[0] <= out["A_over_B"] <= BAND[1]
    nat = [r["B"].get("native_p50_ms") for r in rows]
    if all(v is not None for v in nat):
        out["B_native_p50_ms"] = statistics.median(nat)
        out["A_over_B_native"] = statistics.median([x / y for x, y in zip(a, nat)])
    if all("C" in r for r in rows):
        c = [r["C"]["p50_ms"] for r in rows]
        ac = [x / y for x, y in zip(a, c)]
        out.update(C_p50_ms=statistics.median(c), A_over_C=statistics.median(ac),
                   A_over_C_min=min(ac), A_over_C_max=max(ac), C_info=rows[0]["C"])
    out["A_info"] = {k: rows[0]["A"][k] for k in ("threads", "precision", "options")}
    out["B_info"] = {k: v for k, v in rows[0]["B"].items() if k not in ("p50_ms", "mean_ms", "n", "wall_s",
                                                                          "native_p50_ms", "warmup_iters")}
    return out


def fmt_ms(v: float) -> str:
    return "%.4f" % v if v < 1 else "%.3f" % v


def render(summaries: Dict[Tuple[str, str], Dict[str, Any]], command: str, facts: Dict[str, Any],
           started: str, elapsed_s: float) -> Tuple[str, str]:
    head = ["model", "runtime", "rounds", "A agent p50 ms", "B bare p50 ms", "A/B med [min, max]", "in 0.97-1.03",
            "C benchmark_app p50 ms", "A/C med [min, max]", "B native p50 ms", "others' CPU max"]
    body = []
    for (model, runtime), s in summaries.items():
        row = [model, runtime, str(s["rounds"]), fmt_ms(s["A_p50_ms"]), fmt_ms(s["B_p50_ms"]),
               "%.3f [%.3f, %.3f]" % (s["A_over_B"], s["A_over_B_min"], s["A_over_B_max"]),
               "yes" if s["in_band"] else "NO"]
        if "C_p50_ms" in s:
            row += [fmt_ms(s["C_p50_ms"]), "%.3f [%.3f, %.3f]" % (s["A_over_C"], s["A_over_C_min"], s["A_over_C_max"])]
        else:
            row += ["-", "-"]
        row += [fmt_ms(s["B_native_p50_ms"]) if "B_native_p50_ms" in s else "-", "%.0f%%" % (100 * s["busy_max"])]
        body.append(row)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    table = "\n".join(["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head] + body])
    md = ["```", command, "```", "",
          "%s, %d CPUs (%s), %s MB available of %s MB, Python %s, took %.0f s" % (
              started, facts["nproc"], facts["cpu"], facts["mem_available_mb"], facts["mem_total_mb"],
              facts["python"], elapsed_s), "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in body]
    notes = []
    for (model, runtime), s in summaries.items():
        if "C_info" in s:
            ci = s["C_info"]
            notes.append("- benchmark_app on %s: api %s, %s infer request(s), %s stream(s), %s threads, pinning %s"
                         % (model, ci["api"], ci["nireq"], ci["nstreams"], ci["threads"], ci["pinning"]))
        notes.append("- %s/%s: agent threads %s precision %s; bare %s; run-to-run spread A %.1f%%, B %.1f%%"
                     % (model, runtime, s["A_info"]["threads"], s["A_info"]["precision"],
                        json.dumps(s["B_info"]), 100 * s["A_spread"], 100 * s["B_spread"]))
    md += [""] + notes
    return table, "\n".join(md)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bare"]:
        bare_main(json.loads(argv[1]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4, help="rounds; each runs every configuration once per side")
    p.add_argument("--min-s", type=float, default=3.0, help="timed window of A and B (s)")
    p.add_argument("--min-iters", type=int, default=200)
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--warmup-iters", type=int, default=10)
    p.add_argument("--models", default="digits-cnn,mobilenetv2-224")
    p.add_argument("--runtimes", default="onnxruntime,openvino")
    p.add_argument("--bench-app-t", type=float, default=5.0, help="benchmark_app -t (s); 0 skips C")
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
          "min_s": args.min_s}
    configs = [(m, r) for m in models for r in runtimes]
    rows: Dict[Tuple[str, str], List[Dict[str, Any]]] = {c: [] for c in configs}

    from devices.bundle import build_agent

    with tempfile.TemporaryDirectory(prefix="overhead-") as tmp:
        work = Path(tmp)
        agent = build_agent(work / "agent")
        for rnd in range(args.rounds):
            for model, runtime in configs:
                sides = ["A", "B"] + (["C"] if runtime == "openvino" and args.bench_app_t > 0 else [])
                order = sides if rnd % 2 == 0 else sides[::-1]  # A B C | C B A | ...
                row: Dict[str, Any] = {"round": rnd, "order": "".join(order), "busy": {}}
                for side in order:
                    busy = cpu_busy()
                    row["busy"][side] = busy
                    if busy > 0.25:
                        row.setdefault("busy_who", []).append(top_cpu_processes())
                    if side == "A":
                        row["A"] = run_agent(agent, work, artifacts[model], runtime, ms)
                    elif side == "B":
                        row["B"] = run_bare(artifacts[model], runtime, ms)
                    else:
                        row["C"] = run_benchmark_app(artifacts[model], args.bench_app_t, work / "report")
                row["busy_max"] = max(row["busy"].values())
                rows[(model, runtime)].append(row)
                line = "round %d %-16s %-12s %s  A %s  B %s" % (
                    rnd + 1, model, runtime, row["order"], fmt_ms(row["A"]["p50_ms"]), fmt_ms(row["B"]["p50_ms"]))
                line += "  A/B %.3f" % (row["A"]["p50_ms"] / row["B"]["p50_ms"])
                if "C" in row:
                    line += "  C %s  A/C %.3f" % (fmt_ms(row["C"]["p50_ms"]), row["A"]["p50_ms"] / row["C"]["p50_ms"])
                line += "  others' CPU %.0f%%" % (100 * row["busy_max"])
                print(line, file=sys.stderr, flush=True)

    summaries = {c: summarize(rows[c]) for c in configs}
    elapsed = time.perf_counter() - t_start
    table, md = render(summaries, ".venv/bin/python " + command, facts, started, elapsed)
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
