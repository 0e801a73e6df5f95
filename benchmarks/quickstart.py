#!/usr/bin/env python
"""Quickstart wall time: ``harness sweep suites/quickstart.yaml``, cold then warm.

    .venv/bin/python benchmarks/quickstart.py [--keep DIR] [--warm-runs 1]

1. cold: an empty ``--cache-dir`` (the built-in nets initialised and exported, every
   variant built, int8-static calibrated), a fresh ``--store``;
2. warm: the same command again with the same cache (and store).

Each run's wall time is split into what the sweep itself prints (``build X s, measure Y
s``), the report rendering (timed apart: ``harness report`` on the same store, minus the
start-up cost of a cheap ``harness runs list``), Ray start-up and shutdown (timed apart
with the harness's own ``ray_session``), and the rest (interpreter start, imports, suite
and store, agent zipapp). Targets on the 2-core reference machine: cold < 180 s, warm <
90 s. Others' CPU use on this shared machine is sampled before and during each run.
Exit status 0 whatever the verdict; 1 when a sweep fails.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.dont_write_bytecode = True  # no __pycache__ in benchmarks/ from importing overhead.py
sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import HZ, NCPU, machine_facts, wait_quiet  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGETS = {"cold": 180.0, "warm": 90.0}
RAY_PROBE = (
    "import time; t = time.perf_counter()\n"
    "from harness.coordinator.ray_session import ray_session\n"
    "t1 = time.perf_counter()\n"
    "with ray_session():\n"
    "    t2 = time.perf_counter()\n"
    "t3 = time.perf_counter()\n"
    "print('import %.3f start %.3f shutdown %.3f' % (t1 - t, t2 - t1, t3 - t2))\n"
)


def _proc_table() -> Dict[int, Tuple[int, int]]:
    """pid -> (ppid, utime + stime in ticks) of every process, from /proc/*/stat."""
    table: Dict[int, Tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after "pid (comm)": state ppid ... utime(12th) stime(13th), 0-based from state
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def _cmdline(pid: int) -> bytes:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


class TreeSampler(threading.Thread):
    """Splits CPU time during a run between our process tree (the sweep, its Ray daemons
    and workers, the agents) and everyone else, by sampling /proc every ``period`` s.
    Processes born and gone between two samples are missed on both sides."""

    def __init__(self, root: int, period: float = 0.5):
        super().__init__(daemon=True)
        self.root, self.period = root, period
        self.ours_ticks = self.others_ticks = 0
        self._stop_evt = threading.Event()
        self._ours = {os.getpid(), root}
        self._last: Dict[int, int] = {}
        self._agent: Dict[int, bool] = {}
        self._agents_before: set = set()
        # While an agent is measuring: CPU of the rest of our tree (Ray daemons and
        # workers, the driver) and of others, and how long agents were running.
        self.bg_during_agent_ticks = self.others_during_agent_ticks = 0
        self.agent_alive_s = 0.0
        self._last_t = time.perf_counter()

    def sample(self) -> None:
        table = _proc_table()
        changed = True
        while changed:  # descendants of anything ours are ours (kept once seen)
            changed = False
            for pid, (ppid, _) in table.items():
                if pid not in self._ours and ppid in self._ours:
                    self._ours.add(pid)
                    changed = True
        agents_now = {pid for pid, (ppid, _) in table.items() if pid in self._ours and self._is_agent(pid, ppid)}
        agent_window = bool(agents_now) and bool(self._agents_before)
        now = time.perf_counter()
        if agent_window:
            self.agent_alive_s += now - self._last_t
        self._last_t = now
        for pid, (_, ticks) in table.items():
            delta = ticks - self._last.get(pid, ticks if self._last else 0)
            if self._last and pid not in self._last:
                delta = ticks  # born since the last sample
            delta = max(delta, 0)
            if pid in self._ours:
                self.ours_ticks += delta
                if agent_window and pid not in agents_now:
                    self.bg_during_agent_ticks += delta
            else:
                self.others_ticks += delta
                if agent_window:
                    self.others_during_agent_ticks += delta
        self._last = {pid: ticks for pid, (_, ticks) in table.items()}
        self._agents_before = agents_now

    def _is_agent(self, pid: int, ppid: int) -> bool:
        """Whether ``pid`` is an agent measuring a job: ``agent.pyz measure``, or a child that
        ``agent.pyz serve`` forked for a job (same command line as its parent; the serving
        parent itself only waits). Only a yes is cached, since a freshly forked process
        shows its parent's command line until it execs."""
        if not self._agent.get(pid):
            cmd = _cmdline(pid)
            serve = b".pyz" in cmd and b"serve" in cmd
            self._agent[pid] = (b".pyz" in cmd and b"measure" in cmd) or (serve and _cmdline(ppid) == cmd)
        return self._agent[pid]

    def run(self) -> None:
        while not self._stop_evt.wait(self.period):
            self.sample()

    def start_sampling(self) -> None:
        self.sample()
        self.ours_ticks = self.others_ticks = 0  # count from here
        self.start()

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()
        self.sample()


def timed(argv: List[str], cwd: Path = REPO) -> Tuple[float, int, List[Tuple[float, str]], float, float]:
    """Run ``argv``; (wall s, rc, [(t, line)] of stdout+stderr, others' CPU share, our tree's CPU share),
    the shares being of all CPUs over the wall time."""
    t0 = time.perf_counter()
    env = dict(os.environ, COLUMNS="200", TERM="dumb")
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, env=env)
    sampler = TreeSampler(proc.pid)
    sampler.start_sampling()
    lines: List[Tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop()
    scale = HZ * wall * NCPU
    global LAST_AGENT_WINDOW
    LAST_AGENT_WINDOW = {
        "agent_alive_s": sampler.agent_alive_s,
        "bg_cpu": sampler.bg_during_agent_ticks / (HZ * sampler.agent_alive_s * NCPU) if sampler.agent_alive_s else None,
        "others_cpu": (sampler.others_during_agent_ticks / (HZ * sampler.agent_alive_s * NCPU)
                       if sampler.agent_alive_s else None),
    }
    return wall, rc, lines, sampler.others_ticks / scale, sampler.ours_ticks / scale


LAST_AGENT_WINDOW: Dict[str, Any] = {}


def parse_sweep(lines: List[Tuple[float, str]]) -> Dict[str, Any]:
    text = "\n".join(line for _, line in lines)
    out: Dict[str, Any] = {}
    m = re.search(r"(\d+) ok, (\d+) failed \(([^)]*)\)", text)
    if m:
        out["ok"], out["failed"] = int(m.group(1)), int(m.group(2))
        for key, value in re.findall(r"(\w+) ([\d.]+) s", m.group(3)):
            out[key + "_s"] = float(value)
    oks = [t for t, line in lines if re.match(r"\s*(ok|failed) ", line)]
    if oks:
        out["first_job_done_s"], out["last_job_done_s"] = oks[0], oks[-1]
    out["jobs"] = [line.strip() for _, line in lines if re.match(r"\s*(ok|failed) ", line)]
    return out


def run_once(kind: str, tmp: Path, quiet: float, max_wait: float) -> Dict[str, Any]:
    before, waited = wait_quiet(quiet, max_wait)
    argv = [str(BIN / "harness"), "sweep", "suites/quickstart.yaml", "--store", str(tmp / "h.db"),
            "--cache-dir", str(tmp / "cache")]
    wall, rc, lines, others, ours = timed(argv)
    res = {"kind": kind, "wall_s": wall, "rc": rc, "busy_before": before, "waited_s": waited,
           "others_cpu": others, "our_cpu": ours, "while_measuring": dict(LAST_AGENT_WINDOW), **parse_sweep(lines)}
    if rc != 0:
        sys.stderr.write("\n".join(line for _, line in lines[-40:]) + "\n")
    # Report rendering apart, on the run just stored, and a cheap command for start-up cost.
    rwall, rrc, _, _, _ = timed([str(BIN / "harness"), "report", "--store", str(tmp / "h.db"),
                                 "-o", str(tmp / ("report-%s.html" % kind))])
    bwall, _, _, _, _ = timed([str(BIN / "harness"), "runs", "list", "--store", str(tmp / "h.db")])
    res.update(report_cmd_s=rwall if rrc == 0 else None, baseline_cmd_s=bwall,
               report_s=max(rwall - bwall, 0.0) if rrc == 0 else None)
    return res


def ray_cost() -> Optional[Dict[str, float]]:
    """Ray start and shutdown as the sweep does them (the harness's ray_session)."""
    wall, rc, lines, _, _ = timed([sys.executable, "-c", RAY_PROBE])
    for _, line in lines:
        m = re.match(r"import ([\d.]+) start ([\d.]+) shutdown ([\d.]+)", line)
        if m:
            return {"import_s": float(m.group(1)), "start_s": float(m.group(2)), "shutdown_s": float(m.group(3)),
                    "wall_s": wall}
    return None


def split(res: Dict[str, Any], ray: Optional[Dict[str, float]]) -> Dict[str, float]:
    build, measure = res.get("build_s", 0.0), res.get("measure_s", 0.0)
    report = res.get("report_s") or 0.0
    ray_s = (ray["start_s"] + ray["shutdown_s"]) if ray else 0.0
    return {"build": build, "measure": measure, "report": report, "ray": ray_s,
            "other": res["wall_s"] - build - measure - report - ray_s}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warm-runs", type=int, default=1, help="warm runs after the cold one")
    p.add_argument("--keep", type=Path, help="work here (emptied first) and keep the store, cache and reports")
    p.add_argument("--quiet", type=float, default=0.15, help="wait for others' CPU use below this share first")
    p.add_argument("--max-wait", type=float, default=60.0, help="longest such wait before each run (s)")
    args = p.parse_args(argv)
    command = ".venv/bin/python benchmarks/quickstart.py" + ("" if not argv else " " + " ".join(argv))
    started = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    facts = machine_facts()

    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        tmp_ctx = None
        tmp = args.keep.resolve()
    else:
        tmp_ctx = tempfile.TemporaryDirectory(prefix="quickstart-")
        tmp = Path(tmp_ctx.name)
    try:
        runs = [run_once("cold", tmp, args.quiet, args.max_wait)]
        for i in range(args.warm_runs):
            runs.append(run_once("warm" if args.warm_runs == 1 else "warm%d" % (i + 1), tmp, args.quiet,
                                 args.max_wait))
        ray = ray_cost()
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()

    head = ["run", "wall s", "target s", "met", "build s", "measure s", "report s", "Ray start+stop s", "other s",
            "jobs ok/failed", "others' CPU", "our CPU", "harness bg CPU while agents run"]
    body = []
    for r in runs:
        sp = split(r, ray)
        target = TARGETS["cold" if r["kind"] == "cold" else "warm"]
        body.append([r["kind"], "%.1f" % r["wall_s"], "%.0f" % target, "yes" if r["wall_s"] < target else "NO",
                     "%.1f" % sp["build"], "%.1f" % sp["measure"], "%.1f" % sp["report"], "%.1f" % sp["ray"],
                     "%.1f" % sp["other"], "%s/%s" % (r.get("ok", "?"), r.get("failed", "?")),
                     "%.0f%%" % (100 * r["others_cpu"]), "%.0f%%" % (100 * r["our_cpu"]),
                     "-" if r["while_measuring"].get("bg_cpu") is None else "%.1f%%" % (100 * r["while_measuring"]["bg_cpu"])])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in [head] + body))
    print()
    md = ["```", command, "```", "",
          "%s, %d CPUs (%s), %s MB available of %s MB, Python %s" % (
              started, facts["nproc"], facts["cpu"], facts["mem_available_mb"], facts["mem_total_mb"],
              facts["python"]), "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(row) + " |" for row in body]
    md += ["",
           "- build and measure: as the sweep prints them; report: `harness report` on the same store (%s) minus"
           " `harness runs list` (%s) for interpreter start and imports;"
           % (", ".join("%.1f s" % r["report_cmd_s"] for r in runs if r["report_cmd_s"] is not None),
              ", ".join("%.1f s" % r["baseline_cmd_s"] for r in runs)),
           "  Ray start+stop: the harness's `ray_session` timed apart (%s); other: the rest (interpreter start,"
           " imports, suite, store, agent zipapp, result writes)." % (
               "import %.1f s, start %.1f s, shutdown %.1f s" % (ray["import_s"], ray["start_s"], ray["shutdown_s"])
               if ray else "not measured"),
           "- others' CPU / our CPU: CPU time of processes outside / inside the sweep's process tree (Ray"
           " daemons and workers, agents), sampled from /proc every 0.5 s, as a share of all CPUs over the"
           " run. Others' CPU just before each run: %s; waited for a quiet machine %s."
           % (", ".join("%.0f%%" % (100 * r["busy_before"]) for r in runs),
              ", ".join("%.0f s" % r["waited_s"] for r in runs))]
    md.append("- harness bg CPU while agents run: CPU of our tree other than the agent (Ray daemons and"
              " workers, the sweep driver) while an agent process was alive (%s of agent time sampled), as a"
              " share of all CPUs: competition the harness itself puts on the board it measures when the"
              " board is the coordinator's own machine. Others' CPU over the same time: %s."
              % (", ".join("%.0f s" % r["while_measuring"].get("agent_alive_s", 0) for r in runs),
                 ", ".join("-" if r["while_measuring"].get("others_cpu") is None
                           else "%.1f%%" % (100 * r["while_measuring"]["others_cpu"]) for r in runs)))
    for r in runs:
        md.append("- %s jobs: %s" % (r["kind"], "; ".join(r.get("jobs", []))))
    print("\n".join(md))
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
