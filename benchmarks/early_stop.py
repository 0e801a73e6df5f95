#!/usr/bin/env python
"""Early stopping (``measure.target``) against the fixed window: what it saves, and whether
its interval holds.

Real agent processes (the zipapp the coordinator ships, a fresh process per run, ONNX
Runtime) measure two of the zoo's built-in models, fp32 ONNX (digits-cnn, the zoo's
MobileNetV2-224 exported through the same ``harness.zoo``/``harness.variants`` path as the
other benchmarks), ``--rounds`` rounds each. A round measures a model twice, in
alternating order (A B | B A) so drift cannot favour one arm:

- fixed: the agent's default window (warm-up >= 10 iterations and 1 s; timed >= 200
  iterations and >= 3 s);
- target: the same warm-up and ``min_iters``, ``min_s`` = ``--target-min-s`` (default 0.5 s),
  and ``measure.target: {percentile: 99, rel_error: 0.02, confidence: 0.95}``; no
  ``max_iters``, so a target never met ends at 80% of the time left (``--target-timeout-s``,
  default 30 s: ~23 s), reason ``timeout``.

Both arms run with ``quiet: null`` (no 1 s board-state read) so the windows are compared
alone; others' CPU use during each run is measured from /proc and reported.

Reported per model: iterations and window / agent wall time of each arm (medians), the
saving, the stop reasons, and the coverage: how often the fixed run's p99 of the same round
falls inside the target run's 95% interval, and how often the p99 of all fixed runs pooled
does. The interval is for the run's own p99; the fixed run's p99 carries its own sampling
error and the run-to-run variation of a fresh process (docs/measurement.md, trap 1), so coverage
of it below the nominal 95% measures that variation, not a broken interval.

The interval's own rate is measured apart, in one process (``--replay-s``, default 20 s): a
long fixed window is cut into consecutive segments, each grown from the window's samples with
the agent's check schedule until the stop rule holds (or the segment runs out); the share of
stopped segments whose interval holds the p99 of the whole long window (a reference ~50x
more samples) is the coverage at the stated 95% - sequential stopping included.

    .venv/bin/python benchmarks/early_stop.py [--rounds 5] [--models digits-cnn,mobilenetv2-224]
        [--target-min-s 0.5] [--target-timeout-s 30] [--threads N] [--json FILE]

The default size takes ~3-4 min on the 2-core reference machine. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.dont_write_bytecode = True  # no __pycache__ in benchmarks/ from importing overhead.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import Contention, machine_facts, resolve_artifacts  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FIXED = {"warmup_iters": 10, "warmup_s": 1.0, "min_iters": 200, "min_s": 3.0, "max_iters": None,
         "timeout_s": 600, "threads": None, "seed": 0, "quiet": None, "target": None}  # the agent's defaults
TARGET = {"percentile": 99, "rel_error": 0.02, "confidence": 0.95}


def run_agent(agent: Path, work: Path, model: Dict[str, Any], measure: Dict[str, Any], job: str) -> Dict[str, Any]:
    """One fresh agent process; its result event plus wall time and others' CPU use."""
    spec = {"protocol": 1, "job_id": job, "runtime": "onnxruntime",
            "artifact": {"path": model["path"], "format": "onnx", "sha256": None},
            "input": {"shape": model["shape"], "dtype": "float32"}, "eval": None, "measure": measure,
            "runtime_options": {}}  # fmt: skip
    path = work / f"{job}.json"
    path.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    with Contention() as c:
        proc = subprocess.run([sys.executable, str(agent), "measure", str(path)], capture_output=True, text=True,
                              timeout=measure["timeout_s"] + 60)
    wall = time.perf_counter() - t0
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    result = next((e for e in events if e.get("event") == "result"), None)
    if result is None:
        err = next((e for e in events if e.get("event") == "error"), {})
        raise RuntimeError(f"{job}: {err.get('message') or proc.stderr[-500:]}")
    return {"wall_s": wall, "others": c.others, "n": result["latency"]["n"], "window_s": result["latency"]["window_s"],
            "p99_ms": result["latency"]["p99_ms"], "stop": result["stop"], "samples_ns": result["samples_ns"]}


def replay(samples_ns: List[int], min_n: int) -> Dict[str, Any]:
    """Segments of one long window grown with the agent's check schedule until the stop rule
    holds; how many stopped, how many of their intervals hold the whole window's p99."""
    import numpy as np

    from devices.agent.earlystop import check_every, percentile_interval

    x = np.asarray(samples_ns, dtype=np.float64) / 1e6
    ref = float(np.percentile(x, TARGET["percentile"]))
    start, stopped, hits, sizes = 0, 0, 0, []
    while start + min_n <= len(x):
        n = min_n
        while start + n <= len(x):
            got = percentile_interval(x[start:start + n], TARGET["percentile"], TARGET["confidence"])
            if got["rel_error"] is not None and got["rel_error"] <= TARGET["rel_error"]:
                stopped += 1
                hits += got["lo"] <= ref <= got["hi"]
                sizes.append(n)
                break
            n += check_every(n)
        start += n
    return {"segments": stopped, "covered": hits, "median_n": statistics.median(sizes) if sizes else None,
            "window_n": len(x), "window_p99_ms": ref}


def pooled_p99(runs: List[Dict[str, Any]]) -> float:
    import numpy as np

    from devices.agent.stats import percentile

    allv = np.sort(np.concatenate([np.asarray(r["samples_ns"], dtype=np.float64) for r in runs])) / 1e6
    return percentile(allv, 99)


def inside(value: float, interval: Optional[List[float]]) -> bool:
    return interval is not None and interval[0] <= value <= interval[1]


def summarize(model: str, fixed: List[Dict[str, Any]], target: List[Dict[str, Any]]) -> Dict[str, Any]:
    med = statistics.median
    ref = pooled_p99(fixed)
    same = sum(inside(f["p99_ms"], t["stop"]["interval_ms"]) for f, t in zip(fixed, target))
    pooled = sum(inside(ref, t["stop"]["interval_ms"]) for t in target)
    reasons: Dict[str, int] = {}
    for t in target:
        reasons[t["stop"]["reason"]] = reasons.get(t["stop"]["reason"], 0) + 1
    rel = [t["stop"]["rel_error"] for t in target if t["stop"]["rel_error"] is not None]
    return {
        "model": model, "rounds": len(fixed),
        "fixed_iters": med(f["n"] for f in fixed), "target_iters": med(t["n"] for t in target),
        "fixed_window_s": med(f["window_s"] for f in fixed), "target_window_s": med(t["window_s"] for t in target),
        "fixed_wall_s": med(f["wall_s"] for f in fixed), "target_wall_s": med(t["wall_s"] for t in target),
        "iters_saved": 1 - sum(t["n"] for t in target) / sum(f["n"] for f in fixed),
        "wall_saved": 1 - sum(t["wall_s"] for t in target) / sum(f["wall_s"] for f in fixed),
        "reasons": reasons, "achieved_rel_error_median": med(rel) if rel else None,
        "fixed_p99_ms": med(f["p99_ms"] for f in fixed), "target_p99_ms": med(t["p99_ms"] for t in target),
        "pooled_fixed_p99_ms": ref, "covered_same_round": same, "covered_pooled": pooled,
        "others_max": max(r["others"] for r in fixed + target),
    }  # fmt: skip


def render(rows: List[Dict[str, Any]], args: argparse.Namespace, facts: Dict[str, Any]) -> str:
    out = [
        f"Early stopping vs the fixed window: `measure.target` {{percentile: {TARGET['percentile']}, rel_error: "
        f"{TARGET['rel_error']}, confidence: {TARGET['confidence']}}}, target arm min_s {args.target_min_s} s, "
        f"timeout_s {args.target_timeout_s} s; fixed arm: >= 200 iterations and >= 3 s. ONNX Runtime fp32, "
        f"{args.rounds} rounds per model (A B | B A), a fresh agent process per run; {facts['nproc']} CPUs "
        f"({facts['cpu']}).",
        "",
        "| model | iterations fixed / target (median) | window s fixed / target | agent wall s fixed / target "
        "| iterations saved | wall time saved | stop reasons (target) | achieved rel. error (median) "
        "| p99 ms fixed / target | fixed p99 in interval, same round | pooled fixed p99 in interval "
        "| others' CPU max |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items()))
        rel = "-" if r["achieved_rel_error_median"] is None else f"{r['achieved_rel_error_median']:.2%}"
        out.append(
            f"| {r['model']} | {r['fixed_iters']:.0f} / {r['target_iters']:.0f} | {r['fixed_window_s']:.2f} / "
            f"{r['target_window_s']:.2f} | {r['fixed_wall_s']:.2f} / {r['target_wall_s']:.2f} "
            f"| {r['iters_saved']:+.0%} | {r['wall_saved']:+.0%} | {reasons} | {rel} "
            f"| {r['fixed_p99_ms']:.4g} / {r['target_p99_ms']:.4g} "
            f"| {r['covered_same_round']}/{r['rounds']} ({r['covered_same_round'] / r['rounds']:.0%}) "
            f"| {r['covered_pooled']}/{r['rounds']} ({r['covered_pooled'] / r['rounds']:.0%}) "
            f"| {r['others_max']:.0%} |")
    out += ["", f"Nominal coverage {TARGET['confidence']:.0%} (of the run's own p99). Saved = 1 - target / fixed "
            "(summed over rounds; negative: the target arm took longer)."]
    replays = [r for r in rows if r.get("replay")]
    if replays:
        out += ["", "Coverage in one process (segments of one long window stopped by the rule vs that window's p99):",
                "", "| model | long window n | segments stopped | median n at stop | window p99 in interval |",
                "|---|---|---|---|---|"]
        for r in replays:
            rp = r["replay"]
            rate = f"{rp['covered']}/{rp['segments']} ({rp['covered'] / rp['segments']:.0%})" if rp["segments"] else "-"
            median_n = "-" if rp["median_n"] is None else f"{rp['median_n']:.0f}"
            out.append(f"| {r['model']} | {rp['window_n']} | {rp['segments']} | {median_n} | {rate} |")
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="digits-cnn,mobilenetv2-224")
    ap.add_argument("--target-min-s", type=float, default=0.5)
    ap.add_argument("--target-timeout-s", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: the runtime's own)")
    ap.add_argument("--cache-dir", type=Path, default=Path("~/.cache/edge-harness/artifacts").expanduser())
    ap.add_argument("--json", type=Path)
    ap.add_argument("--replay-s", type=float, default=20.0, help="the long window cut into segments (0: skip)")
    args = ap.parse_args(argv)

    from harness.coordinator.bundle import build_agent

    work = Path(tempfile.mkdtemp(prefix="eh-earlystop-"))
    agent = build_agent(work / "agent")
    models = resolve_artifacts([m.strip() for m in args.models.split(",") if m.strip()], args.cache_dir)
    fixed_ms = dict(FIXED, threads=args.threads)
    target_ms = dict(fixed_ms, min_s=args.target_min_s, timeout_s=args.target_timeout_s, target=TARGET)
    rows, raw = [], {}
    t0 = time.monotonic()
    for name, model in models.items():
        runs: Dict[str, List[Dict[str, Any]]] = {"fixed": [], "target": []}
        for r in range(args.rounds):
            for arm in (("fixed", "target") if r % 2 == 0 else ("target", "fixed")):
                ms = fixed_ms if arm == "fixed" else target_ms
                runs[arm].append(run_agent(agent, work, model, ms, f"{name}-{arm}-{r}"))
            f, t = runs["fixed"][-1], runs["target"][-1]
            print(f"{name} round {r + 1}/{args.rounds}: fixed n={f['n']} p99={f['p99_ms']:.4g} ms | target "
                  f"n={t['n']} {t['stop']['reason']} interval={t['stop']['interval_ms']} "
                  f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
        rows.append(summarize(name, runs["fixed"], runs["target"]))
        if args.replay_s > 0:
            long = run_agent(agent, work, model, dict(fixed_ms, min_s=args.replay_s, timeout_s=args.replay_s * 3 + 60),
                             f"{name}-replay")
            rows[-1]["replay"] = replay(long["samples_ns"], FIXED["min_iters"])
            print(f"{name} replay: {rows[-1]['replay']}", file=sys.stderr, flush=True)
        raw[name] = {arm: [{k: v for k, v in x.items() if k != "samples_ns"} for x in xs] for arm, xs in runs.items()}
    print(render(rows, args, machine_facts()))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "runs": raw}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
