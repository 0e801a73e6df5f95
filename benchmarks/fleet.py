#!/usr/bin/env python
"""The fleet at scale: how much does the coordinator add to jobs spread over many SSH boards?

Starts real OpenSSH servers (the test suite's SSH lab: network namespaces when root, else
loopback ports), one per simulated board, and sweeps ``--models`` tiny ONNX models over
``--hosts`` boards (one job per model and board) with the agent's ``sleep`` runtime, whose
timed window lasts ``--job-s`` seconds and costs no CPU. Then:

- **wall / ideal**: the measuring phase's wall time over the ideal, total job time / hosts,
  where a job's time is its timed window as the agent measured it (target <= 1.10);
- **per-job overhead**: each job's wall time on its device actor (uploads, spec, agent
  process start, facts, warm-up, exit) minus its timed window: the median (target < 100 ms),
  with the coordinator's own dispatch gap (wall per host minus the jobs' walls) apart;
- **repeat sweep**: the same sweep again uploads 0 artifact bytes (every file is found by hash);
- **memory with ``--memory-hosts`` boards**: USS of the coordinator process and of its Ray
  processes (the site actor holding every board, raylet, GCS, idle workers), after one short
  job per board, with every board connected.

    .venv/bin/python benchmarks/fleet.py [--hosts 16] [--models 10] [--job-s 1.0] [--memory-hosts 50]

Must run as root for namespaces (EH_SSH_LAB=loopback forces loopback ports).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def tiny_models(where: Path, n: int) -> list[Path]:
    """n distinct one-MatMul ONNX files (distinct weights: distinct hashes, distinct uploads)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    paths = []
    for i in range(n):
        w = numpy_helper.from_array(np.full((8, 10), i + 1, dtype=np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], f"tiny{i}",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = where / f"tiny{i}.onnx"
        onnx.save(model, path)
        paths.append(path)
    return paths


def write_files(tmp: Path, hosts: list, models: list[Path], job_s: float) -> tuple[Path, Path]:
    devices = [
        {"name": f"board-{i:02d}", "kind": "generic", "host": h.address, "port": h.port, "user": h.user,
         "key": str(h.key), "known_hosts": str(h.known_hosts), "python": sys.executable,
         "workdir": str(tmp / "boards" / f"board-{i:02d}"), "runtimes": ["sleep"]}
        for i, h in enumerate(hosts)
    ]  # fmt: skip
    inventory = tmp / f"inventory-{len(hosts)}.yaml"
    inventory.write_text(json.dumps({"devices": devices}))
    suite = tmp / f"suite-{len(models)}.yaml"
    suite.write_text(json.dumps({
        "name": "fleet-bench",
        "models": [{"name": p.stem, "onnx": str(p), "input_shape": [1, 8]} for p in models],
        "variants": ["fp32"], "runtimes": ["sleep"], "runtime_options": {"sleep": {"latency_ms": 10}},
        "measure": {"warmup_iters": 1, "warmup_s": 0.0, "min_iters": 1, "min_s": job_s, "timeout_s": 120,
                    "quiet": None},  # no warm-up to hide the 1 s board-state reading behind: off
    }))
    return suite, inventory


def sweep(suite_path: Path, inventory_path: Path, store_path: Path, cache: Path):  # noqa: ANN201
    import harness.store
    from harness.config import load_inventory, load_suite
    from harness.coordinator.sweep import SweepOptions, run_sweep

    with harness.store.open(store_path) as st:
        t0 = time.monotonic()
        out = run_sweep(load_suite(suite_path), load_inventory(inventory_path), st,
                        SweepOptions(cache_dir=cache, quiet=True))
        wall = time.monotonic() - t0
        df = st.results(run=out.run_id).sort_values("started")
        by_id = dict(st._conn.execute(
            "SELECT j.id, r.details_json FROM jobs j JOIN results r ON r.job_id = j.id WHERE j.run_id=?",
            (out.run_id,)).fetchall())  # fmt: skip
        details = [json.loads(by_id[i] or "{}") for i in df.job_id]
    return out, wall, df, details


def uss_mb(pids: list[int]) -> float:
    """Unique set size (private pages) summed over processes, from /proc/PID/smaps_rollup."""
    total_kb = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += sum(int(line.split()[1]) for line in text.splitlines()
                        if line.startswith(("Private_Clean:", "Private_Dirty:")))
    return total_kb / 1024


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ray_pids(skip: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """Every descendant of this process (Ray's GCS, raylet, workers and actors), but not the
    subtrees rooted at ``skip`` (the SSH lab's servers, their sessions and the boards' agents:
    the simulated boards, not the coordinator)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, frontier = [], [os.getpid()]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in skip]
        out.extend(kids)
        frontier.extend(kids)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=16)
    ap.add_argument("--models", type=int, default=10, help="jobs per host")
    ap.add_argument("--job-s", type=float, default=1.0)
    ap.add_argument("--memory-hosts", type=int, default=50, help="0 skips the memory measurement")
    args = ap.parse_args()

    from harness.coordinator.ray_session import ray_session
    from tests.sshlab import SSHLab

    tmp = Path(tempfile.mkdtemp(prefix="eh-fleet-"))
    lab = SSHLab(tmp / "lab")
    try:
        n_lab = max(args.hosts, args.memory_hosts)
        t0 = time.monotonic()
        hosts = lab(n_lab)
        print(f"SSH lab: {n_lab} sshd ({lab.mode}) in {time.monotonic() - t0:.1f} s")
        models = tiny_models(tmp, args.models)
        cache = tmp / "cache"
        suite, inventory = write_files(tmp, hosts[: args.hosts], models, args.job_s)
        with ray_session():
            rows = {}
            for label in ("cold", "repeat"):
                out, wall, df, details = sweep(suite, inventory, tmp / "h.db", cache)
                assert set(df.status) == {"ok"}, df[df.status != "ok"][["device", "error"]]
                windows = df.window_s.to_numpy()
                ideal = windows.sum() / args.hosts
                measure = out.timings_s["measure"]
                per_job = [d["wall_s"] - w for d, w in zip(details, windows, strict=True)]
                around_agent = [d["wall_s"] - d["agent_s"] for d in details]
                agent_extra = [d["agent_s"] - w for d, w in zip(details, windows, strict=True)]
                per_host_wall = df.assign(w=[d["wall_s"] for d in details]).groupby("device").w.sum()
                dispatch = (measure - per_host_wall).median() / args.models
                # Steady state: each board from the end of its first job (actor, connection and agent
                # server started) to the end of its last, against the windows of the jobs in between.
                busy = later = 0.0
                for _, g in df.assign(w=windows).groupby("device"):
                    busy += g.finished.max() - g.finished.iloc[0]
                    later += g.w.iloc[1:].sum()
                startup = (df.groupby("device").finished.min() - df.started.min()).median() - args.job_s
                first = [d for d in details if "serve_start_s" in d]
                rows[label] = {
                    "connect_median_s": round(statistics.median(d.get("connect_s", 0) for d in first), 2),
                    "serve_start_median_s": round(statistics.median(d["serve_start_s"] for d in first), 2),
                    "steady_wall_over_ideal": round(busy / later, 3),
                    "board_startup_median_s": round(startup, 2),
                    "jobs": len(df), "sweep_wall_s": round(wall, 2), "measure_wall_s": round(measure, 2),
                    "ideal_s": round(ideal, 2), "wall_over_ideal": round(measure / ideal, 3),
                    "overhead_median_ms": round(statistics.median(per_job) * 1e3, 1),
                    "overhead_p90_ms": round(sorted(per_job)[int(0.9 * len(per_job))] * 1e3, 1),
                    "dispatch_gap_ms": round(dispatch * 1e3, 1),
                    "transport_median_ms": round(statistics.median(around_agent) * 1e3, 1),
                    "agent_beyond_window_median_ms": round(statistics.median(agent_extra) * 1e3, 1),
                    "uploaded_bytes": int(sum(d.get("uploaded_bytes", 0) for d in details)),
                }  # fmt: skip
                print(label, json.dumps(rows[label]))
            if args.memory_hosts:
                suite_m, inventory_m = write_files(tmp, hosts[: args.memory_hosts], models[:1], 0.2)
                before = uss_mb([os.getpid()])
                _, wall, df, _ = sweep(suite_m, inventory_m, tmp / "m.db", cache)
                assert set(df.status) == {"ok"}
                # Measured while the actors of the finished sweep are gone: start them again and hold them.
                print(f"memory sweep: {len(df)} jobs on {args.memory_hosts} boards in {wall:.1f} s")
                mem = _hold_actors(inventory_m, cache, {h.proc.pid for h in hosts if h.proc is not None})
                mem["driver_uss_mb_before"] = round(before, 1)
                print("memory", json.dumps(mem))
    finally:
        lab.close()


def _hold_actors(inventory_path: Path, cache: Path, lab_pids: set[int]) -> dict:
    """USS of the driver and of every Ray process while the sweep's actors hold every board
    connected (``DeviceActors``: one site actor, a thread and a connection per board)."""
    import ray

    from harness.config import load_inventory
    from harness.config.suite import LeaseSettings
    from harness.coordinator.actors import DeviceActors
    from harness.coordinator.bundle import build_agent
    from harness.coordinator.files import FileRef

    devices = load_inventory(inventory_path).resolved()
    agent = FileRef.of(build_agent(cache / "agent"))
    t0 = time.monotonic()
    actors = DeviceActors(tuple(devices), agent, {}, str(cache / "staged"), 60.0, LeaseSettings(), "fleet-bench")
    # Each board: warmed (connected, its agent server started), then probed (reconnected): connected, no server.
    errors = [e for e in ray.get([actors.probe(b) for b in actors.boards]) if e]
    assert not errors, errors[:3]
    ready_s = time.monotonic() - t0
    pids = ray_pids(skip=lab_pids)
    actor_pids = [p for p in pids if _cmdline(p).startswith("ray::SiteRunner")]
    out = {
        "boards": len(actors.boards),
        "driver_uss_mb": round(uss_mb([os.getpid()]), 1),
        "ray_processes_uss_mb": round(uss_mb(pids), 1),
        "ray_processes": len(pids),
        "actor_processes": len(actor_pids),
        "per_actor_uss_mb": round(uss_mb(actor_pids) / max(1, len(actor_pids)), 1),
        "actor_uss_per_board_mb": round(uss_mb(actor_pids) / max(1, len(actors.boards)), 2),
        "actor_threads": sum(_threads(p) for p in actor_pids),
        "all_connected_s": round(ready_s, 2),
    }
    actors.kill_all()
    return out


def _threads(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:")), 0)


if __name__ == "__main__":
    main()
