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

Every run is measured as a sweep with ``canary: {every: 1}`` measures one board: the
board canary (MobileNetV2-224 fp32 on ONNX Runtime), then each configuration followed by
the canary again (C X1 C X2 C X3 C X4 C); each window's start and end are stored. With
``--interleaved``, as ``canary: {interleaved: true}`` measures it: the canary first and last
(C X1 X2 X3 X4 C), and inside each configuration's timed window, alternating with it in
blocks of 0.3 s on the configuration's runtime (its percentiles stored with the window).

Measurement modes (``--modes``), at the same timed time per job (issue 9):

- ``r1`` (default): one timed window (the defaults: warm-up >= 10 iterations and 1 s,
  window >= 200 iterations and >= 3 s);
- ``r5``: five windows in five fresh processes (``measure.repeats: 5``), each a fifth as long
  (>= 40 iterations and >= 0.6 s, warm-up 0.2 s), folded as the sweep folds them.

Every round is one stored run per kind and mode (A, and B from round 11), kinds and modes
alternating order (A B | B A). Then the real gate code judges, for each canary layout the
runs hold (the interleaved canary; the canary windows next to every job; only its first and
last windows, as ``canary: true`` stores them; none), the first ten runs serving only as
history:

- A/A: each A run from round 11 on against (1) the previous A run, (2) the previous five
  (a tag's history), the previous 20 giving the noise: false positives = regressions
  reported (target <= 1%);
- detection: each B run against the five A runs before it: regressions found on the slowed
  configuration's latency_p50 (target >= 95%).

    .venv/bin/python benchmarks/gate_error_rates.py [--rounds 36] [--modes r1] [--threads 1] [--interleaved]
                                                    [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.canary import CANARY, CANARY_VARIANT  # noqa: E402

# Models whose latency is large enough that a 10% dose can be injected as extra graph nodes
# (the digits CNN runs in ~30 us: the branch's fixed node overhead alone exceeds 10% of that).
CONFIGS = [("mobilenetv2-224", "fp32", "onnxruntime"), ("mobilenetv2-224", "int8-static", "onnxruntime"),
           ("mobilenetv2-224", "fp32", "openvino"), ("resnet18-224", "fp32", "onnxruntime")]
MEASURE = {"warmup_iters": 10, "warmup_s": 1.0, "min_iters": 200, "min_s": 3.0, "max_iters": None,
           "timeout_s": 600, "threads": None, "seed": 0, "quiet": None}  # the agent's timing defaults, no board
# reading (the benchmark measures the gate, not the board's load); --threads pins the runtime's
OPTIONS = {"openvino": {"inference_precision": "f32"}}
# mode -> (repeats, what the mode changes in MEASURE): the same timed seconds per job.
MODES = {"r1": (1, {}), "r5": (5, {"min_iters": 40, "min_s": 0.6, "warmup_s": 0.2})}
BLOCK_S = 0.3  # the interleaved canary's block: the suite's default
# Runs before the first judged one: the canary adjustment needs ten runs of history to fit.
START = 10


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


MAX_BLOCKS = 1000  # ResNet-18 (34 ms) needs ~500 for 10%; each block is a 16 KB initializer


def calibrate(src: Path, runtime: str, work: Path, paired: Callable[[Path], float],
              target: float = 0.10) -> tuple[Path, int, float]:
    """Blocks for ~``target`` extra latency, timed by the agent itself. ``paired`` is one agent
    process's ratio of the slowed model's p50 to the plain model's, the two alternating in
    blocks inside one timed window (the interleaved canary's loop with the plain model as the
    canary): a process's speed, which moves the int8 model's p50 by ~4% from one process to
    the next here, is shared by both and cancels instead of setting the dose (pairs of separate
    processes left its dose 2% off target). Each point is the median of four processes. A line
    through every point so far (the branch's fixed cost and its cost per block) proposes the
    next dose, up to three times; the point nearest the target is kept."""

    def ratio(path: Path) -> float:
        return float(np.median([paired(path) for _ in range(4)]))

    def slowed(n: int) -> Path:
        return slowed_copy(src, work / f"{src.stem}-{runtime}-slow{n}.onnx", n)

    points = {n: ratio(slowed(n)) for n in (8, 64)}
    for _ in range(3):
        fixed, per = np.polyfit(list(points), [r - 1 for r in points.values()], 1)[::-1]
        # a noisy moment can flatten the line: bound the cost per block from below and the dose from
        # above (each block is a 16 KB initializer; an unbounded dose fills the memory)
        blocks = int(min(MAX_BLOCKS, max(1, round((target - fixed) / max(per, 1e-4)))))
        if blocks in points:
            break
        points[blocks] = ratio(slowed(blocks))
        if abs(points[blocks] - 1 - target) <= 0.01:
            break
    blocks = min(points, key=lambda n: abs(points[n] - 1 - target))
    return slowed(blocks), blocks, points[blocks]


def measure(agent: Path, artifact: Path, shape: tuple[int, ...], runtime: str, work: Path, job: str,  # noqa: ANN201
            min_s: float | None = None, canary: tuple[Path, tuple[int, ...]] | None = None, **overrides: float):
    """One agent process measuring ``artifact``; with ``canary`` (its file and input shape), the
    canary interleaved with it as the coordinator's spec asks for it."""
    from devices.agent.spec import Artifact, MeasureSettings
    from harness.coordinator.protocol import canary_spec, encode_spec, make_spec, parse_events, result_from_events
    from harness.records import Job, JobSettings

    settings = MeasureSettings(**dict(MEASURE, min_s=min_s or MEASURE["min_s"], **overrides))
    as_job = Job("", "", "local", runtime, JobSettings(settings, OPTIONS.get(runtime, {}),
                                                       canary_block_s=BLOCK_S if canary is not None else None))
    spec = make_spec(as_job, job, Artifact(str(artifact), "onnx"), shape, None,
                     canary=None if canary is None else canary_spec(as_job, Artifact(str(canary[0]), "onnx"), canary[1]))
    path = work / f"{job}.json"
    path.write_text(encode_spec(spec))
    proc = subprocess.run([sys.executable, str(agent), "measure", str(path)], capture_output=True, text=True,
                          timeout=700, env=dict(os.environ))
    result = result_from_events(parse_events(proc.stdout), proc.returncode, proc.stderr)
    if result.status != "ok":
        raise RuntimeError(f"{job}: {result.error}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=36)
    ap.add_argument("--modes", default="r1", help=f"measurement modes, of {', '.join(MODES)}")
    ap.add_argument("--configs", type=int, default=len(CONFIGS), help="how many of the configurations to measure")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--min-s", type=float, default=MEASURE["min_s"], help="timed window (default: the agent's 3 s)")
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: the runtime's own)")
    ap.add_argument("--interleaved", action="store_true",
                    help="the canary inside each configuration's window and first and last, not between the jobs")
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
    from harness.coordinator.bundle import build_agent
    from harness.config.suite import BuiltinModel
    from harness.variants import ArtifactCache, build_variant
    from harness.zoo import resolve_model

    work = Path(tempfile.mkdtemp(prefix="eh-gate-"))
    cache = ArtifactCache(Path("~/.cache/edge-harness/artifacts").expanduser())
    agent = build_agent(work / "agent")
    arts: dict[tuple, tuple[Path, Path, tuple[int, ...]]] = {}
    for model, chain, runtime in configs:
        v = build_variant(resolve_model(BuiltinModel(builtin=model), cache), chain, cache)
        shape = tuple(v.input_shape)

        def paired(path: Path, plain: Path = Path(v.path), shape: tuple[int, ...] = shape,
                   runtime: str = runtime) -> float:
            m = measure(agent, path, shape, runtime, work, f"calib-{path.stem}", min_s=1.0,
                        canary=(plain, shape)).metrics
            return m["p50_ms"] / m["canary_p50_ms"]

        slow, blocks, ratio = calibrate(Path(v.path), runtime, work, paired)
        arts[(model, chain, runtime)] = (Path(v.path), slow, shape)
        print(f"{model} {chain} {runtime}: {blocks} extra MatMul blocks, calibrated slowdown {ratio:.3f}", flush=True)

    canary = build_variant(resolve_model(CANARY, cache), CANARY_VARIANT, cache)
    canary_art = (Path(canary.path), tuple(canary.input_shape))
    store = harness.store.open(work / "gate.db")
    t0 = time.monotonic()
    wall = dict.fromkeys(modes, 0.0)
    for r in range(args.rounds):
        for kind in ["A", "B"] if r % 2 == 0 else ["B", "A"]:
            if kind == "B" and r < START:
                continue
            for mode in modes if r % 2 == 0 else modes[::-1]:
                wall[mode] += _measure_run(store, agent, work, arts, canary_art, configs, kind, mode, args.interleaved)
        print(f"round {r + 1}/{args.rounds} done at {time.monotonic() - t0:.0f} s "
              f"(wall per mode: {', '.join(f'{m} {w:.0f} s' for m, w in wall.items())})", flush=True)

    store.close()
    analyze(work / "gate.db", args.json)


def _measure_run(store, agent: Path, work: Path, arts: dict, canary: tuple, configs: list, kind: str,  # noqa: ANN001
                 mode: str, interleaved: bool = False) -> float:
    """One stored run as a sweep with ``canary: {every: 1}`` measures it on one board: the
    canary, then each configuration followed by the canary (C X1 C X2 ... Xn C), the canary's
    windows stored as its first, between (one repeat per gap) and last jobs with their times.
    ``interleaved``: as ``canary: {interleaved: true}`` does, C X1 X2 ... Xn C with the canary
    inside each X. Returns the seconds spent measuring the configurations."""
    from harness.coordinator.repeats import as_repeat, combine
    from devices.agent.spec import MeasureSettings
    from harness.records import Job, JobSettings

    repeats, overrides = MODES[mode]
    settings = MeasureSettings(**{**MEASURE, **overrides})
    run = store.create_run(suite="gate-bench", config={}, tag=f"{kind}-{mode}")
    jobs = [Job(m, c, "local", rt, JobSettings(settings, repeats=repeats)) for m, c, rt in configs]
    gaps = 0 if interleaved else len(configs) - 1
    canaries = {when: Job(CANARY.label, CANARY_VARIANT, "local", "onnxruntime",
                          JobSettings(settings, repeats=n, canary=when))
                for when, n in (("first", 1), ("between", gaps), ("last", 1)) if n}
    ids = store.add_jobs(run, [*jobs, *canaries.values()])
    windows: dict[str, list] = {key: [] for key in ids}

    def window(job: Job, path: Path, shape: tuple, runtime: str, inside: tuple | None = None) -> None:
        started = time.time()
        res = measure(agent, path, shape, runtime, work, f"{run}-{job.key}-{len(windows[job.key])}", canary=inside,
                      **overrides)
        windows[job.key].append((as_repeat(res, len(windows[job.key]), "local", started, time.time()), res))

    spent = 0.0
    window(canaries["first"], *canary, "onnxruntime")
    for i, (job, cfg) in enumerate(zip(jobs, configs, strict=True)):
        a, b, shape = arts[cfg]
        t1 = time.monotonic()
        for _ in range(repeats):
            window(job, a if kind == "A" else b, shape, cfg[2], canary if interleaved else None)
        spent += time.monotonic() - t1
        if i >= gaps and i < len(configs) - 1:
            continue  # interleaved: no canary window between the jobs
        window(canaries["between" if i < gaps else "last"], *canary, "onnxruntime")
    for job in [*jobs, *canaries.values()]:
        store.job_started(ids[job.key], "local")
        reps = windows[job.key]
        store.record(ids[job.key], combine([rep for rep, _ in reps], reps[-1][1]))
    store.finish_run(run, "ok")
    return spent


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


# canary layout -> (the canary jobs it drops from a copy of the stored rounds, whether it drops
# the interleaved canary's percentiles from the windows)
LAYOUTS = {"interleaved canary": (None, False), "canary next to every job": (None, True),
           "canary first and last": ("between", True), "no canary": ("all", True)}
INTERLEAVED_KEYS = ("$.canary_p50_ms", "$.canary_p90_ms", "$.canary_p99_ms")


def _layouts(db: Path) -> list[str]:
    """The layouts the stored rounds can show (each a real one, none a copy of another)."""
    import sqlite3

    conn = sqlite3.connect(db)
    inside = conn.execute("SELECT count(*) FROM repeats WHERE json_extract(summary_json, '$.canary_p50_ms') "
                          "IS NOT NULL").fetchone()[0]
    whens = {w for (w,) in conn.execute("SELECT DISTINCT json_extract(settings_json, '$.canary') FROM jobs "
                                        "WHERE model = ?", (CANARY.label,))}
    conn.close()
    have = {"interleaved canary": inside > 0, "canary next to every job": "between" in whens,
            "canary first and last": bool(whens), "no canary": True}
    return [name for name in LAYOUTS if have[name]]


def _layout_copy(db: Path, layout: str, work: Path) -> Path:
    """A copy of ``db`` as a sweep with fewer canary measurements would have stored it."""
    import shutil
    import sqlite3

    drop, strip = LAYOUTS[layout]
    if drop is None and not strip:
        return db
    out = work / f"{db.stem}-{drop}-{strip}.db"
    shutil.copyfile(db, out)
    conn = sqlite3.connect(out)
    conn.execute("PRAGMA foreign_keys=ON")
    where = "" if drop == "all" else " AND json_extract(settings_json, '$.canary') = 'between'"
    with conn:
        if drop is not None:
            conn.execute(f"DELETE FROM jobs WHERE model = ?{where}", (CANARY.label,))
        if strip:
            conn.execute(f"UPDATE repeats SET summary_json = json_remove(summary_json, {', '.join('?' * 3)})",
                         INTERLEAVED_KEYS)
    conn.close()
    return out


def analyze(db: Path, json_out: Path | None = None) -> dict:
    """The gate's verdicts on the stored rounds for each canary layout (the unstable rule on, and
    off for reference): A/A false positives, detection per configuration."""
    import harness.store
    from harness.config.gate import DEFAULT

    policy = DEFAULT.model_copy(update={"latency_p99": None, "energy_per_inference": None, "peak_memory": None,
                                        "accuracy": None})  # latency_p50 +5%: the gate's headline metric
    out: dict = {"db": str(db)}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in _layouts(db):
            store = harness.store.open(_layout_copy(db, layout, Path(tmp)))
            runs = store.runs().sort_values("started")
            df = store.results()
            for mode in sorted({t[2:] for t in runs.tag if t.startswith("A-")}) or [""]:
                suffix = f"-{mode}" if mode else ""
                sel = df[df.tag.isin([f"A{suffix}", f"B{suffix}"]) & (df.model != CANARY.label)]
                share = float(sel.unstable.notna().mean())
                for marks in (True, False):
                    label = f"{mode or 'r1'}, {layout}" + ("" if marks else ", unstable rule off")
                    print(f"## {label} ({share:.0%} of the results marked unstable)")
                    out[label] = _analyze_mode(store, runs, policy, suffix, marks)
                    out[label]["unstable_share"] = round(share, 3)
            store.close()
    if json_out:
        json_out.write_text(json.dumps(out, indent=1))
    return out


def _analyze_mode(store, runs, policy, suffix: str, marks: bool = True) -> dict:  # noqa: ANN001
    from harness.gate.canary import CanaryWindows, fit_line
    from harness.gate.evaluate import evaluate

    a_runs = runs[runs.tag == f"A{suffix}"].run.tolist()
    starts = dict(zip(runs.run, runs.started, strict=True))
    out: dict = {"a_runs": len(a_runs)}
    for label, k in (("previous run", 1), ("previous 5 runs", 5)):
        total = inconclusive = 0
        wolves: list[str] = []  # each false positive, to see what fooled the gate
        for i in range(START, len(a_runs)):
            res = evaluate(store, a_runs[i], a_runs[i - k:i], policy, a_runs[max(0, i - 20):i], marks)
            total += len(res.verdicts)
            inconclusive += res.count("inconclusive")
            wolves += [f"A run {i + 1}: {v.label} {(v.ratio - 1) * 100:+.1f}% (interval {v.ci[0]:.3f}-{v.ci[1]:.3f}, "
                       f"q {v.q:.4f}){'; ' + v.note if v.note else ''}" for v in res.verdicts if v.verdict == "regression"]
        flags = len(wolves)
        out[f"aa_vs_{k}"] = {"comparisons": total, "regressions": flags, "rate": flags / max(total, 1),
                             "inconclusive": inconclusive, "false_positives": wolves}
        print(f"A/A vs {label}: {flags} regressions in {total} comparisons = {flags / max(total, 1):.2%} "
              f"({inconclusive} inconclusive)")
        for w in wolves:
            print(f"  false positive: {w}")
    df = store.results()
    df = df[df.tag.isin([f"A{suffix}", f"B{suffix}"]) & (df.model != CANARY.label)]
    windows = CanaryWindows(store, runs.run)
    per: dict[str, dict] = {}
    for run in runs[runs.tag == f"B{suffix}"].run:
        earlier = [a for a in a_runs if starts[a] < starts[run]]
        if len(earlier) < START:
            continue
        for v in evaluate(store, run, earlier[-5:], policy, earlier[-20:], marks).verdicts:
            key = f"{v.config['model']}/{v.config['variant']}/{v.config['runtime']}"
            d = per.setdefault(key, {"comparisons": 0, "regressions": 0, "inconclusive": 0, "misses": []})
            d["comparisons"] += 1
            d["regressions"] += v.verdict == "regression"
            d["inconclusive"] += v.verdict == "inconclusive"
            if v.verdict != "regression":  # what the gate said instead, to see why it missed
                d["misses"].append(f"{v.verdict} {(v.ratio - 1) * 100:+.1f}% (interval {v.ci[0]:.3f}-{v.ci[1]:.3f})"
                                   f"{'; ' + v.note if v.note else ''}"
                                   f"{'; unstable: ' + v.unstable if v.unstable and v.unstable not in v.note else ''}")
    for key, d in per.items():
        m, c, rt = key.split("/")
        sel = df[(df.model == m) & (df.variant == c) & (df.runtime == rt)]
        a, b = sel[sel.tag == f"A{suffix}"].p50_ms, sel[sel.tag == f"B{suffix}"].p50_ms
        d["true_slowdown"] = round(b.median() / a.median(), 4)
        # a model whose processes land in two speed modes moves the median between them: the
        # geometric means weigh every run
        d["true_slowdown_geomean"] = round(float(np.exp(np.log(b).mean() - np.log(a).mean())), 4)
        d["run_to_run_cv_A"] = round(a.std() / a.mean(), 4)
        d["rate"] = d["regressions"] / max(d["comparisons"], 1)
        d["unstable_share"] = round(float(sel.unstable.notna().mean()), 3) if "unstable" in sel else None
        pairs, b_pairs = ([p for p in (windows.pair(int(j), 50) for j in sel[sel.tag == f"{t}{suffix}"].job_id) if p]
                          for t in "AB")
        adjusted = ""
        if len(pairs) >= 3:  # the canary's share of the A runs' spread, fitted over all of them
            line = fit_line(pairs)
            d["beta_A"], d["residual_sd_A"] = round(line.beta, 3), round(line.sd, 4)
            adjusted = f", beta {line.beta:.2f}, sd relative to the canary {d['residual_sd_A']:.2%}"
        if pairs and b_pairs:  # the dose the runs realized, each run's p50 over its canary's
            d["slowdown_vs_canary"] = round(float(np.exp(np.mean([y - c for y, c in b_pairs])
                                                         - np.mean([y - c for y, c in pairs]))), 4)
            adjusted += f", slowdown relative to the canary {d['slowdown_vs_canary']:.3f}"
        print(f"detection {key}: {d['regressions']}/{d['comparisons']} = {d['rate']:.0%} "
              f"(true slowdown {d['true_slowdown']:.3f}, of the geometric means {d['true_slowdown_geomean']:.3f}, "
              f"run-to-run CV of p50 {d['run_to_run_cv_A']:.2%}{adjusted})")
        for miss in d["misses"]:
            print(f"  missed: {miss}")
    near = [d for d in per.values() if 1.08 <= d["true_slowdown"] <= 1.12]
    if near:
        hit, n = sum(d["regressions"] for d in near), sum(d["comparisons"] for d in near)
        out["detection_of_true_8_to_12_pct"] = {"comparisons": n, "regressions": hit, "rate": hit / n}
        print(f"detection where the true slowdown is 8-12%: {hit}/{n} = {hit / n:.1%}")
    out["detection"] = per
    return out


if __name__ == "__main__":
    main()
