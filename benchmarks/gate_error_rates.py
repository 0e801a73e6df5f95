#!/usr/bin/env python
"""Does ``harness gate`` cry wolf, and does it catch a real 10% slowdown?

Real measurements on this machine: the device agent (the zipapp the coordinator ships, a
fresh process per run, the default iteration counts: warm-up 10 iterations and 1 s, timed
window >= 200 iterations and >= 3 s) measures four configurations over many rounds:

- A: the configuration as built (MobileNetV2-224 fp32 and int8-static on ONNX Runtime,
  MobileNetV2-224 fp32 on OpenVINO, ResNet-18-224 fp32 on ONNX Runtime);
- B: the same model with a real extra compute branch calibrated to cost ~10% of its
  latency (a chain of MatMuls fed by the input, added to the output times zero, so no
  runtime can fold it away). The true slowdown is measured from the runs themselves.

Two measurement modes side by side, at the same timed time per job (issue 9):

- ``r1``: one timed window (the defaults: warm-up >= 10 iterations and 1 s, window >= 200
  iterations and >= 3 s);
- ``r5``: five windows in five fresh processes (``measure.repeats: 5``), each a fifth as long
  (>= 40 iterations and >= 0.6 s, warm-up 0.2 s), folded as the sweep folds them.

Every round is one stored run per kind and mode (A, and B every other round), configurations
interleaved, kinds and modes alternating order (A B | B A). Then the real gate code judges:

- A/A: each A run from round 6 on against (1) the previous A run, (2) the previous five
  (a tag's history): false positives = regressions reported (target <= 1%);
- detection: each B run against the five A runs before it: regressions found on the slowed
  configuration's latency_p50 (target >= 95%).

    .venv/bin/python benchmarks/gate_error_rates.py [--rounds 56] [--modes r1,r5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Models whose latency is large enough that a 10% dose can be injected as extra graph nodes
# (the digits CNN runs in ~30 us: the branch's fixed node overhead alone exceeds 10% of that).
CONFIGS = [("mobilenetv2-224", "fp32", "onnxruntime"), ("mobilenetv2-224", "int8-static", "onnxruntime"),
           ("mobilenetv2-224", "fp32", "openvino"), ("resnet18-224", "fp32", "onnxruntime")]
MEASURE = {"warmup_iters": 10, "warmup_s": 1.0, "min_iters": 200, "min_s": 3.0, "max_iters": None,
           "timeout_s": 600, "threads": None, "seed": 0}  # the agent's defaults; --threads pins the runtime's
OPTIONS = {"openvino": {"inference_precision": "f32"}}
# mode -> (repeats, what the mode changes in MEASURE): the same timed seconds per job.
MODES = {"r1": (1, {}), "r5": (5, {"min_iters": 40, "min_s": 0.6, "warmup_s": 0.2})}


def slowed_copy(src: Path, dst: Path, blocks: int, size: int = 64) -> Path:
    """``src`` plus a chain of ``blocks`` MatMuls fed by the input, added to the output times 0."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    x, y = g.input[0].name, g.output[0].name
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.ones((size, size), np.float32), "eh_ones"),
             numpy_helper.from_array(np.zeros((1,), np.float32), "eh_zero")]
    nodes = [helper.make_node("ReduceMean", [x], ["eh_s"], keepdims=0),
             helper.make_node("Mul", ["eh_ones", "eh_s"], ["eh_a0"])]
    for i in range(blocks):
        w = numpy_helper.from_array((rng.standard_normal((size, size)) / size).astype(np.float32), f"eh_w{i}")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [f"eh_a{i}", f"eh_w{i}"], [f"eh_a{i + 1}"]))
    nodes += [helper.make_node("ReduceSum", [f"eh_a{blocks}"], ["eh_sum"], keepdims=0),
              helper.make_node("Mul", ["eh_sum", "eh_zero"], ["eh_nil"])]
    old_out = y + "_eh_orig"
    for node in g.node:
        node.output[:] = [old_out if o == y else o for o in node.output]
    nodes.append(helper.make_node("Add", [old_out, "eh_nil"], [y]))
    g.node.extend(nodes)
    g.initializer.extend(inits)
    onnx.save(m, str(dst))
    return dst


MAX_BLOCKS = 400


def calibrate(src: Path, runtime: str, work: Path, p50: callable, target: float = 0.10) -> tuple[Path, int, float]:
    """Blocks for ~``target`` extra latency, timed by the agent itself (min of 5 runs per point, so a
    noisy moment does not set the dose): the branch's fixed cost and its cost per block are
    fitted from two points, then the dose is checked once and corrected."""

    def cal(path: Path) -> float:
        return min(p50(path) for _ in range(5))

    def slowed(n: int) -> Path:
        return slowed_copy(src, work / f"{src.stem}-{runtime}-slow{n}.onnx", n)

    base = cal(src)
    p_lo, p_hi = cal(slowed(4)), cal(slowed(24))
    # A noisy moment can make the two points equal: bound the cost per block from below and the
    # dose from above (each block is a 16 KB initializer; an unbounded dose fills the memory).
    per = max((p_hi - p_lo) / 20, 1e-3 * base)
    fixed = p_lo - base - 4 * per
    blocks = min(MAX_BLOCKS, max(1, round((target * base - fixed) / per)))
    ratio = cal(slowed(blocks)) / base
    if ratio > 1 and abs(ratio - 1 - target) > 0.02:
        blocks = min(MAX_BLOCKS, max(1, round(blocks * target / (ratio - 1))))
        ratio = cal(slowed(blocks)) / base
    return slowed(blocks), blocks, ratio


def measure(agent: Path, artifact: Path, shape: tuple[int, ...], runtime: str, work: Path, job: str,  # noqa: ANN201
            min_s: float | None = None, **overrides: float):
    from harness.coordinator.protocol import parse_events, result_from_events

    settings = dict(MEASURE, min_s=min_s or MEASURE["min_s"], **overrides)
    spec = {"protocol": 1, "job_id": job, "runtime": runtime,
            "artifact": {"path": str(artifact), "format": "onnx", "sha256": None},
            "input": {"shape": list(shape), "dtype": "float32"}, "eval": None, "measure": settings,
            "runtime_options": OPTIONS.get(runtime, {})}  # fmt: skip
    path = work / f"{job}.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(agent), "measure", str(path)], capture_output=True, text=True,
                          timeout=700, env=dict(os.environ))
    result = result_from_events(parse_events(proc.stdout), proc.returncode, proc.stderr)
    if result.status != "ok":
        raise RuntimeError(f"{job}: {result.error}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=56)
    ap.add_argument("--modes", default="r1,r5", help=f"measurement modes, of {', '.join(MODES)}")
    ap.add_argument("--configs", type=int, default=len(CONFIGS), help="how many of the configurations to measure")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--min-s", type=float, default=MEASURE["min_s"], help="timed window (default: the agent's 3 s)")
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: the runtime's own)")
    ap.add_argument("--analyze", type=Path, metavar="DB", help="only judge the rounds stored in DB by an earlier run")
    ap.add_argument("--remark", action="store_true",
                    help="with --analyze: recompute each result's unstable mark from its stored repeats with the "
                         "current rule (writes the DB)")
    args = ap.parse_args()
    if args.analyze:
        if args.remark:
            remark(args.analyze)
        analyze(args.analyze, args.json)
        return
    MEASURE["min_s"] = args.min_s
    MEASURE["threads"] = args.threads
    modes = args.modes.split(",")
    configs = CONFIGS[: args.configs]

    import harness.store
    from devices.bundle import build_agent
    from harness.config.suite import BuiltinModel
    from harness.coordinator.repeats import as_repeat, combine
    from harness.records import Job
    from harness.variants import ArtifactCache, build_variant
    from harness.zoo import resolve_model

    work = Path(tempfile.mkdtemp(prefix="eh-gate-"))
    cache = ArtifactCache(Path("~/.cache/edge-harness/artifacts").expanduser())
    agent = build_agent(work / "agent")
    arts: dict[tuple, tuple[Path, Path, tuple[int, ...]]] = {}
    for model, chain, runtime in configs:
        v = build_variant(resolve_model(BuiltinModel(builtin=model), cache), chain, cache)
        shape = tuple(v.input_shape)

        def p50(path: Path, shape: tuple[int, ...] = shape, runtime: str = runtime) -> float:
            return measure(agent, path, shape, runtime, work, f"calib-{path.stem}", min_s=1.0).metrics["p50_ms"]

        slow, blocks, ratio = calibrate(Path(v.path), runtime, work, p50)
        arts[(model, chain, runtime)] = (Path(v.path), slow, shape)
        print(f"{model} {chain} {runtime}: {blocks} extra MatMul blocks, calibrated slowdown {ratio:.3f}", flush=True)

    store = harness.store.open(work / "gate.db")
    t0 = time.monotonic()
    wall = dict.fromkeys(modes, 0.0)
    for r in range(args.rounds):
        kinds = ["A", "B"] if r % 2 == 0 else ["B", "A"]
        for kind in kinds:
            if kind == "B" and (r < 5 or r % 2):
                continue
            for mode in modes if r % 2 == 0 else modes[::-1]:
                repeats, overrides = MODES[mode]
                run = store.create_run(suite="gate-bench", config={}, tag=f"{kind}-{mode}")
                jobs = [Job(m, c, "local", rt, {"measure": {**MEASURE, **overrides, "repeats": repeats}})
                        for m, c, rt in configs]
                ids = store.add_jobs(run, jobs)
                for job, cfg in zip(jobs, configs, strict=True):
                    a, b, shape = arts[cfg]
                    store.job_started(ids[job.key], "local")
                    t1 = time.monotonic()
                    windows = [measure(agent, a if kind == "A" else b, shape, cfg[2], work, f"{run}-{job.key}-{i}",
                                       **overrides) for i in range(repeats)]
                    wall[mode] += time.monotonic() - t1
                    reps = [as_repeat(w, i, "local", 0.0, 0.0) for i, w in enumerate(windows)]
                    store.record(ids[job.key], combine(reps, windows[-1]))
                store.finish_run(run, "ok")
        print(f"round {r + 1}/{args.rounds} done at {time.monotonic() - t0:.0f} s "
              f"(wall per mode: {', '.join(f'{m} {w:.0f} s' for m, w in wall.items())})", flush=True)

    store.close()
    analyze(work / "gate.db", args.json)


def remark(db: Path) -> None:
    """Re-derive the jobs' unstable marks from their stored repeats (harness.coordinator.repeats)."""
    import sqlite3

    import pandas as pd

    import harness.store
    from harness.coordinator.repeats import unstable_mark

    with harness.store.open(db) as store:
        reps = store.repeats()
    marks = {}
    for job_id, g in reps.groupby("job_id"):
        rows = [{k: v for k, v in r.items() if isinstance(v, str) or pd.notna(v)} for r in g.to_dict("records")]
        if len(rows) > 1:  # a one-window job's mark is its window's
            marks[int(job_id)] = unstable_mark(rows)
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("UPDATE results SET unstable=? WHERE job_id=?", [(m, j) for j, m in marks.items()])
    conn.close()
    print(f"re-marked {len(marks)} results from their repeats: {sum(m is not None for m in marks.values())} unstable")


def analyze(db: Path, json_out: Path | None = None) -> dict:
    """The gate's verdicts on the stored rounds: A/A false positives, detection per configuration."""
    import harness.store
    from harness.config.gate import DEFAULT

    policy = DEFAULT.model_copy(update={"latency_p99": None, "energy_per_inference": None, "peak_memory": None,
                                        "accuracy": None})  # latency_p50 +5%: the gate's headline metric
    store = harness.store.open(db)
    runs = store.runs().sort_values("started")
    out: dict = {"db": str(db)}
    tags = sorted({t[2:] for t in runs.tag if t.startswith("A-")}) or [""]
    df = store.results()
    for mode in tags:
        suffix = f"-{mode}" if mode else ""
        sel = df[df.tag.isin([f"A{suffix}", f"B{suffix}"])]
        share = float(sel.unstable.notna().mean()) if "unstable" in sel else 0.0
        for marks in (True, False):
            label = f"{mode or 'r1'}" + ("" if marks else ", unstable rule off")
            print(f"## mode {label} ({share:.0%} of the results marked unstable)")
            out[label] = _analyze_mode(store, runs, policy, suffix, marks)
            out[label]["unstable_share"] = round(share, 3)
    store.close()
    if json_out:
        json_out.write_text(json.dumps(out, indent=1))
    return out


def _analyze_mode(store, runs, policy, suffix: str, marks: bool = True) -> dict:  # noqa: ANN001
    from harness.gate.evaluate import evaluate

    a_runs = runs[runs.tag == f"A{suffix}"].run.tolist()
    starts = dict(zip(runs.run, runs.started, strict=True))
    out: dict = {"a_runs": len(a_runs)}
    for label, k in (("previous run", 1), ("previous 5 runs", 5)):
        flags = total = inconclusive = 0
        for i in range(5, len(a_runs)):
            res = evaluate(store, a_runs[i], a_runs[i - k:i], policy, a_runs[max(0, i - 20):i], marks)
            total += len(res.verdicts)
            flags += res.count("regression")
            inconclusive += res.count("inconclusive")
        out[f"aa_vs_{k}"] = {"comparisons": total, "regressions": flags, "rate": flags / max(total, 1),
                             "inconclusive": inconclusive}
        print(f"A/A vs {label}: {flags} regressions in {total} comparisons = {flags / max(total, 1):.2%} "
              f"({inconclusive} inconclusive)")
    df = store.results()
    df = df[df.tag.isin([f"A{suffix}", f"B{suffix}"])]
    per: dict[str, dict] = {}
    for run in runs[runs.tag == f"B{suffix}"].run:
        earlier = [a for a in a_runs if starts[a] < starts[run]]
        for v in evaluate(store, run, earlier[-5:], policy, earlier[-20:], marks).verdicts:
            key = f"{v.config['model']}/{v.config['variant']}/{v.config['runtime']}"
            d = per.setdefault(key, {"comparisons": 0, "regressions": 0, "inconclusive": 0})
            d["comparisons"] += 1
            d["regressions"] += v.verdict == "regression"
            d["inconclusive"] += v.verdict == "inconclusive"
    for key, d in per.items():
        m, c, rt = key.split("/")
        sel = df[(df.model == m) & (df.variant == c) & (df.runtime == rt)]
        a, b = sel[sel.tag == f"A{suffix}"].p50_ms, sel[sel.tag == f"B{suffix}"].p50_ms
        d["true_slowdown"] = round(b.median() / a.median(), 4)
        d["run_to_run_cv_A"] = round(a.std() / a.mean(), 4)
        d["rate"] = d["regressions"] / max(d["comparisons"], 1)
        d["unstable_share"] = round(float(sel.unstable.notna().mean()), 3) if "unstable" in sel else None
        print(f"detection {key}: {d['regressions']}/{d['comparisons']} = {d['rate']:.0%} "
              f"(true slowdown {d['true_slowdown']:.3f}, run-to-run CV of p50 {d['run_to_run_cv_A']:.2%})")
    near = [d for d in per.values() if 1.08 <= d["true_slowdown"] <= 1.12]
    if near:
        hit, n = sum(d["regressions"] for d in near), sum(d["comparisons"] for d in near)
        out["detection_of_true_8_to_12_pct"] = {"comparisons": n, "regressions": hit, "rate": hit / n}
        print(f"detection where the true slowdown is 8-12%: {hit}/{n} = {hit / n:.1%}")
    out["detection"] = per
    return out


if __name__ == "__main__":
    main()
