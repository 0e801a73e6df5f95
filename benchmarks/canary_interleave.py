#!/usr/bin/env python
"""Would a canary interleaved with the job, in its own process, explain more of the board's
run-to-run noise than canary windows next to it (``canary: {every: 1}``)?

The gate's canary (harness/gate/canary.py) is a control variate measured in windows before
and after a job, each in its own process. On the test VM a model's own speed also moves within
seconds, and now and then a process lands in a slow mode for its whole window that the canary
next to it does not share (gate_error_rates.py, RESULTS.md). This measures the alternative in
fresh processes, one per round, one inference thread (the agent's ONNX Runtime class and
timed loop, in this script's process):

- separate windows, as the gate sees them today: canary 3 s, model 1 3 s, canary 3 s, model 2
  3 s, canary 3 s; a model's covariate is the mean log p50 of the canary windows around it;
- interleaved: the same process then alternates 0.3 s blocks of a model and of the canary
  (3 s of each); the covariate is the canary blocks' p50.

Per model it prints the run-to-run sd of log p50 raw and relative to each covariate (the
residual of the least-squares line the gate fits, ``fit_line``), and what interleaving does
to the model's own p50 (it must not change the latency it reports).

    .venv/bin/python benchmarks/canary_interleave.py [--rounds 24] [--json FILE]   # ~30 s a round
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = [("mobilenetv2-224", "int8-static"), ("resnet18-224", "fp32")]  # neither is the canary itself
WINDOW_S, BLOCK_S, BLOCKS = 3.0, 0.3, 10


def one_round(canary: str, models: list[str]) -> dict[str, float]:
    """One fresh process: separate windows, then interleaved blocks; p50s in ms. Each model is
    measured as the agent measures it: its ONNX Runtime class, input and timed loop."""
    from devices.agent.measure import Deadline, make_input, timed_loop
    from devices.agent.runtimes import RUNTIMES

    feed = make_input((1, 3, 224, 224), "float32", 0)
    paths = {"canary": canary, **{f"m{i}": p for i, p in enumerate(models)}}
    runtimes = {key: RUNTIMES["onnxruntime"]({}, 1) for key in paths}
    for key, rt in runtimes.items():
        rt.load(paths[key])
        rt.prepare(feed)
    fns = {key: rt.infer_fn() for key, rt in runtimes.items()}
    deadline = Deadline(3600.0)

    def window(key: str, seconds: float) -> list[int]:
        return timed_loop(fns[key], 1, seconds, None, deadline)[0]

    for key in fns:
        window(key, 1.0)  # warm-up
    r = {"c0": float(np.median(window("canary", WINDOW_S))) / 1e6}
    for i in range(len(models)):
        r[f"m{i}"] = float(np.median(window(f"m{i}", WINDOW_S))) / 1e6
        r[f"c{i + 1}"] = float(np.median(window("canary", WINDOW_S))) / 1e6
    for i in range(len(models)):
        mine: list[int] = []
        theirs: list[int] = []
        for _ in range(BLOCKS):
            mine += window(f"m{i}", BLOCK_S)
            theirs += window("canary", BLOCK_S)
        r[f"im{i}"], r[f"ic{i}"] = float(np.median(mine)) / 1e6, float(np.median(theirs)) / 1e6
    return r


def analyze(rows: list[dict[str, float]]) -> dict:
    from harness.gate.canary import fit_line

    def log(key: str) -> np.ndarray:
        return np.log([r[key] for r in rows])

    out = {}
    for i, (model, variant) in enumerate(MODELS):
        y, yi = log(f"m{i}"), log(f"im{i}")
        separate = fit_line(list(zip(y, (log(f"c{i}") + log(f"c{i + 1}")) / 2, strict=True)))
        inter = fit_line(list(zip(yi, log(f"ic{i}"), strict=True)))
        out[f"{model} {variant}"] = d = {
            "rounds": len(rows), "raw_sd": float(np.std(y, ddof=1)), "separate_beta": separate.beta,
            "separate_residual": separate.sd, "interleaved_raw_sd": float(np.std(yi, ddof=1)),
            "interleaved_beta": inter.beta, "interleaved_residual": inter.sd,
            "interleaving_moves_p50": float(np.exp(np.mean(yi) - np.mean(y)) - 1)}
        print(f"{model} {variant}: {len(rows)} rounds, run-to-run sd of log p50 {d['raw_sd']:.2%}; relative to "
              f"the canary windows next to it {d['separate_residual']:.2%} (beta {d['separate_beta']:.2f}); "
              f"interleaved: raw {d['interleaved_raw_sd']:.2%}, relative to the interleaved canary "
              f"{d['interleaved_residual']:.2%} (beta {d['interleaved_beta']:.2f}); interleaving moves the p50 "
              f"{d['interleaving_moves_p50']:+.1%}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # a round's process: canary path, model paths
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_round(args.one[0], args.one[1:])))
        return

    from harness.config.suite import BuiltinModel
    from harness.canary import CANARY, CANARY_VARIANT
    from harness.variants import ArtifactCache, build_variant
    from harness.zoo import resolve_model

    cache = ArtifactCache(Path("~/.cache/edge-harness/artifacts").expanduser())
    canary = build_variant(resolve_model(CANARY, cache), CANARY_VARIANT, cache).path
    models = [build_variant(resolve_model(BuiltinModel(builtin=m), cache), v, cache).path for m, v in MODELS]
    rows = []
    for i in range(args.rounds):
        proc = subprocess.run([sys.executable, __file__, "--one", str(canary), *map(str, models)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout))
        print(f"round {i + 1}/{args.rounds}", flush=True)
    out = analyze(rows)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "models": out}, indent=1))


if __name__ == "__main__":
    main()
