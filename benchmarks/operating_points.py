"""Operating points on this machine, two questions side by side in one run:

A. Does the ``offline`` scenario reach the throughput OpenVINO's own tool reports? The agent
   (a fresh ``python -m devices.agent measure`` process: OpenVINO, f32, its own thread count,
   ``inflight`` left to the runtime = OPTIMAL_NUMBER_OF_INFER_REQUESTS, as benchmark_app takes it)
   against ``benchmark_app -hint throughput -infer_precision f32`` on the same ONNX file, for
   the same time, alternating A B | B A per round; the verdict is the median of the per-round
   ratios (target >= 0.97). ONNX Runtime's offline throughput (one session, a thread per request,
   one intra-op thread each) is printed beside it, with its single-stream throughput.
B. Does the operating-point search (doubling, bisection, trimming: devices/agent/scenarios/search.py)
   find the point the full grid finds, in fewer windows? In one agent process per model, every
   count of requests in flight 1..--grid is measured once (the grid), the search runs over its own
   fresh windows, and both choices are compared (the same rule over each set of windows), with
   the p99 bound set to --bound-x times the one-request p99 so the answer lies inside the grid.

Before every process (A) and every window (B) the script waits (up to 60 s / 30 s) until other
processes use under 15% of the CPUs, as benchmarks/overhead.py does, and A prints others' CPU
use during each arm: rounds where it passed 10% are left out of the clean median.

    .venv/bin/python benchmarks/operating_points.py [--models mobilenetv2-224,resnet18-224]
        [--rounds 3] [--seconds 8] [--grid 12] [--bound-x 3] [--search-s 3]

Models are the zoo's, built fp32 through the harness's own build (cached under --cache-dir).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import Contention, wait_quiet  # noqa: E402  (a sibling script: waiting for, and measuring, others' CPU use)

QUIET = 0.15  # before every process or window: others below 15% of the CPUs (waited for up to 60 s)
CLEAN = 0.10  # a round of A counts as clean when others used under 10% of the CPUs during both of its arms


def build(models: List[str], cache_dir: Path) -> Dict[str, Dict[str, Any]]:
    from harness.config.suite import BuiltinModel
    from harness.variants import ArtifactCache, build_variant
    from harness.zoo import resolve_model

    cache = ArtifactCache(cache_dir)
    out = {}
    for name in models:
        v = build_variant(resolve_model(BuiltinModel(builtin=name), cache), "fp32", cache)
        out[name] = {"path": str(v.path), "shape": list(v.input_shape)}
    return out


def spec(model: Dict[str, Any], runtime: str, seconds: float, **measure: Any) -> Dict[str, Any]:
    return {
        "protocol": 5, "job_id": "operating-%s" % runtime, "runtime": runtime,
        "artifact": {"path": model["path"], "format": "onnx"}, "input": {"shape": model["shape"], "dtype": "float32"},
        "measure": dict({"warmup_iters": 10, "warmup_s": 1.0, "min_iters": 10, "min_s": seconds, "timeout_s": 600,
                         "quiet": None}, **measure),
        "runtime_options": {"inference_precision": "f32"} if runtime == "openvino" else {},
    }  # fmt: skip


def run_agent(raw: Dict[str, Any], work: Path) -> Dict[str, Any]:
    path = work / "spec.json"
    path.write_text(json.dumps(raw))
    proc = subprocess.run([sys.executable, "-m", "devices.agent", "measure", str(path)], cwd=REPO, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    result = next((e for e in events if e.get("event") == "result"), None)
    if proc.returncode != 0 or result is None:
        raise RuntimeError("agent failed (rc %s): %s %s" % (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:]))
    return result


def run_benchmark_app(model: Dict[str, Any], seconds: float) -> Dict[str, Any]:
    exe = Path(sys.executable).parent / "benchmark_app"
    argv = [str(exe), "-m", model["path"], "-d", "CPU", "-hint", "throughput", "-t", "%g" % seconds,
            "-infer_precision", "f32", "-shape", "[%s]" % ",".join(str(d) for d in model["shape"])]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    text = proc.stdout + proc.stderr
    m = re.search(r"Throughput:\s+([\d.]+)\s*FPS", text)
    if proc.returncode != 0 or not m:
        raise RuntimeError("benchmark_app failed (rc %s):\n%s" % (proc.returncode, text[-2000:]))

    def grab(pattern: str) -> str:
        g = re.search(pattern, text)
        return g.group(1) if g else "?"

    return {"throughput": float(m.group(1)), "nireq": grab(r"OPTIMAL_NUMBER_OF_INFER_REQUESTS:\s*(\d+)"),
            "nstreams": grab(r"\bNUM_STREAMS:\s*(\d+)"), "threads": grab(r"INFERENCE_NUM_THREADS:\s*(\d+)"),
            "median_ms": float(grab(r"Median:\s+([\d.]+)\s*ms"))}


def _quiet_run(fn: Any) -> Tuple[Any, float]:
    """``fn()`` once others use under QUIET of the CPUs; (its value, others' share during it)."""
    wait_quiet(QUIET, 60.0)
    with Contention() as c:
        value = fn()
    return value, c.others


def part_a(models: Dict[str, Dict[str, Any]], rounds: int, seconds: float, work: Path) -> None:
    print("\n## A. offline throughput vs benchmark_app -hint throughput (OpenVINO, f32; %d rounds of %g s)\n"
          % (rounds, seconds))
    print("| model | agent offline inf/s (rounds) | benchmark_app inf/s (rounds) | others' CPU % (A/B) | ratio per round | "
          "median ratio (clean rounds) | median ratio (all) | agent: requests / streams | "
          "benchmark_app: requests / streams / threads | ORT offline inf/s | ORT single-stream inf/s |")
    print("|---|---|---|---|---|---:|---:|---|---|---:|---:|")
    for name, model in models.items():
        agent, app, ratios, others, clean = [], [], [], [], []
        last_agent: Dict[str, Any] = {}
        last_app: Dict[str, Any] = {}
        for r in range(rounds):
            arms = ("A", "B") if r % 2 == 0 else ("B", "A")
            got: Dict[str, float] = {}
            busy: Dict[str, float] = {}
            for arm in arms:
                if arm == "A":
                    last_agent, busy["A"] = _quiet_run(
                        lambda: run_agent(spec(model, "openvino", seconds, scenario="offline", threads=None), work))
                    got["A"] = last_agent["latency"]["throughput_ips"]
                else:
                    last_app, busy["B"] = _quiet_run(lambda: run_benchmark_app(model, seconds))
                    got["B"] = last_app["throughput"]
            agent.append(got["A"])
            app.append(got["B"])
            ratios.append(got["A"] / got["B"])
            others.append("%.0f/%.0f" % (100 * busy["A"], 100 * busy["B"]))
            if max(busy.values()) < CLEAN:
                clean.append(ratios[-1])
        ort_off, _ = _quiet_run(lambda: run_agent(spec(model, "onnxruntime", seconds, scenario="offline"), work))
        ort_one, _ = _quiet_run(lambda: run_agent(spec(model, "onnxruntime", seconds), work))
        pool = last_agent["scenario"].get("pool", {})
        print("| %s | %s | %s | %s | %s | **%s** (%d) | %.3f | %s / %s | %s / %s / %s | %.1f | %.1f |" % (
            name, ", ".join("%.1f" % v for v in agent), ", ".join("%.1f" % v for v in app), ", ".join(others),
            ", ".join("%.3f" % v for v in ratios), "%.3f" % statistics.median(clean) if clean else "-", len(clean),
            statistics.median(ratios), pool.get("requests"), pool.get("streams"), last_app["nireq"],
            last_app["nstreams"], last_app["threads"], ort_off["latency"]["throughput_ips"],
            ort_one["latency"]["throughput_ips"]))


def part_b(models: Dict[str, Dict[str, Any]], grid: int, bound_x: float, search_s: float) -> None:
    import numpy as np

    from devices.agent.inputs import make_input
    from devices.agent.loops import Deadline
    from devices.agent.runtimes import open_runtime
    from devices.agent.scenarios.offline import Offline
    from devices.agent.scenarios.search import choose, search
    from devices.agent.spec import parse_spec

    print("\n## B. the operating-point search vs the full grid 1..%d (OpenVINO offline, f32; windows of >= %g s)\n"
          % (grid, search_s))
    print("| model | p99 bound ms | grid windows | grid choice (inf/s, p99 ms) | search windows | search order | "
          "search choice (inf/s, p99 ms) | same point | throughput search / grid |")
    print("|---|---:|---:|---|---:|---|---|---|---:|")
    for name, model in models.items():
        raw = spec(model, "openvino", search_s, scenario="offline", p99_bound_ms=1.0, inflight=grid, min_iters=100)
        job = parse_spec(raw)
        runtime = open_runtime(job.runtime, job.runtime_options, job.measure.threads)
        scen = Offline(job, runtime)
        scen.plan()
        runtime.load(job.artifact.path)
        runtime.prepare(make_input(job.input.shape, job.input.dtype, 0))
        deadline = Deadline(3600)
        scen.open(1, deadline, 1.0)  # warm the board up once

        def probe(n: int) -> Tuple[float, float]:
            wait_quiet(QUIET, 30.0)
            return scen._probe(n, deadline)

        one = probe(1)
        bound = bound_x * one[1]
        grid_windows = {n: probe(n) for n in range(1, grid + 1)}
        grid_choice = choose(grid_windows, bound)
        chosen, met, windows = search(probe, bound, grid)
        scen.close()
        runtime.close()
        by_n = {w["inflight"]: (w["throughput_ips"], w["p99_ms"]) for w in windows}
        g = grid_windows.get(grid_choice) if grid_choice else None
        s = by_n[chosen]
        print("| %s | %.1f | %d | %s (%.1f, %.1f) | %d | %s | %d (%.1f, %.1f)%s | %s | %.3f |" % (
            name, bound, len(grid_windows), grid_choice, g[0] if g else np.nan, g[1] if g else np.nan, len(windows),
            " ".join(str(w["inflight"]) for w in windows), chosen, s[0], s[1], "" if met else " bound not met",
            "yes" if chosen == grid_choice else "no", s[0] / g[0] if g else np.nan))
        print("|  | grid: %s |" % "; ".join("%d: %.1f/s %.1f ms" % (n, t, p) for n, (t, p) in grid_windows.items()))


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenetv2-224,resnet18-224")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0, help="each offline / benchmark_app window (s)")
    p.add_argument("--grid", type=int, default=12, help="the grid's (and the search's) most requests in flight")
    p.add_argument("--bound-x", type=float, default=3.0, help="p99 bound = this x the one-request p99")
    p.add_argument("--search-s", type=float, default=3.0, help="each search or grid window (s)")
    p.add_argument("--cache-dir", type=Path, default=Path("~/.cache/edge-harness/artifacts").expanduser())
    p.add_argument("--skip", default="", help="a, b: skip that part")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    models = build([m.strip() for m in args.models.split(",") if m.strip()], args.cache_dir)
    import openvino
    import onnxruntime

    print("# operating points: %s, %d CPUs, openvino %s, onnxruntime %s, python %s" % (
        os.uname().nodename, os.cpu_count() or 0, openvino.get_version(), onnxruntime.__version__,
        sys.version.split()[0]))
    print("command: %s" % " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]))
    with tempfile.TemporaryDirectory() as tmp:
        if "a" not in args.skip:
            part_a(models, args.rounds, args.seconds, Path(tmp))
        if "b" not in args.skip:
            part_b(models, args.grid, args.bound_x, args.search_s)
    print("\ntotal %.0f s" % (time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
