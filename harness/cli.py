"""The ``harness`` command. Thin: parse arguments, load config, call a plain function.

Exit codes: 0 ok; 1 the gate found a regression; 2 bad input or usage (one message
naming file, line and field); 3 the sweep finished but some jobs failed
(``inventory check``: some devices are not ok); 4 the results store could not be written
mid-sweep (the run is left resumable); 70 a bug in the harness (short notice, traceback in
a log file); 130 interrupted (Ctrl-C; a sweep's run is left resumable).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.errors import HarnessError, Interrupted, as_harness_error
from harness.store import DEFAULT_PATH
from harness.store.writer import STALE_AFTER_S

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_JOBS_FAILED, EXIT_BUG = 0, 1, 2, 3, 70
EXIT_STORE_WRITE, EXIT_INTERRUPTED = 4, 130  # ``StoreWriteError.exit_code``, ``Interrupted.exit_code``

# Not a terminal (CI logs, pipes): rich would squeeze tables into 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _seconds(text: str) -> float:
    """A positive, finite number of seconds up to a day (argparse: otherwise a usage error, exit 2)."""
    value = float(text)
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be > 0 and at most 86400")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def cmd_sweep(args: argparse.Namespace) -> int:
    from harness.config import load_inventory, load_suite
    from harness.coordinator.sweep import SweepOptions, run_sweep
    from harness.store import open as open_store

    suite = load_suite(args.suite)
    inventory = load_inventory(args.inventory)
    opts = SweepOptions(tag=args.tag, cache_dir=args.cache_dir, device_names=args.devices, device_tags=args.tags,
                        ray_address=args.ray_address, suite_path=str(args.suite), quiet=args.quiet,
                        resume=args.resume, force=args.force,
                        inventory_path=None if args.inventory is None else str(args.inventory))
    with open_store(args.store) as store:
        outcome = run_sweep(suite, inventory, store, opts)
        _summarize(outcome, args.store)
        if outcome.left:  # a first Ctrl-C: the running jobs were stored, the rest wait for --resume
            err.print(f"[yellow]interrupted[/]: run {outcome.run_id} stopped with {outcome.left} job(s) not run; "
                      f"finish it with: {escape(outcome.resume)}")
            return EXIT_INTERRUPTED
        try:
            report = None if args.no_report else _write_report(store, outcome.run_id, args.report)
        except (HarnessError, OSError) as e:  # the results are stored: say so, and keep the sweep's exit code
            err.print(f"[bold red]error:[/] the report was not written: {escape(str(e))}")
            report = None
    if report:
        out.print(f"report: {escape(str(report))}")
    return EXIT_JOBS_FAILED if outcome.failed else EXIT_OK


def _summarize(outcome: Any, store: Path) -> None:
    """What a sweep did, printed before anything else can go wrong (the report)."""
    for reason in outcome.skipped:
        err.print(f"[dim]not planned: {escape(reason)}[/]")
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.timings_s.items())
    out.print(f"run [bold]{outcome.run_id}[/]: {outcome.ok} ok, {len(outcome.failed)} failed ({timings})")
    for reason, labels in _grouped(outcome.failed).items():
        more = ", ..." if len(labels) > 3 else ""
        jobs = labels[0] if len(labels) == 1 else f"{len(labels)} jobs ({', '.join(labels[:3])}{more})"
        out.print(f"  [red]failed[/] {escape(jobs)}: {escape(reason)}")
    for board, reason in outcome.down.items():
        out.print(f"  [red]down[/] {escape(board)}: {escape(reason)}")
    for (model, variant, reason), runtimes in _by_reason(outcome.degraded).items():
        where = f" on {', '.join(runtimes)}" if not reason.startswith("on ") else ""
        out.print(f"  [yellow]degraded[/] {escape(f'{model} [{variant}]{where}')}: {escape(reason)}")
    out.print(f"results: {escape(str(store))}")


def _by_reason(degraded: dict[tuple[str, str, str], str]) -> dict[tuple[str, str, str], list[str]]:
    """Degraded (model, variant, runtime)s as one line per model, variant and reason, with its runtimes."""
    by: dict[tuple[str, str, str], list[str]] = {}
    for (model, variant, runtime), reason in sorted(degraded.items()):
        by.setdefault((model, variant, reason), []).append(runtime)
    return by


def _grouped(failed: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Failed jobs by reason (one cause hitting many jobs reads as one line), most frequent first."""
    by: dict[str, list[str]] = {}
    for label, reason in failed:
        by.setdefault(reason, []).append(label)
    return dict(sorted(by.items(), key=lambda kv: -len(kv[1])))


def cmd_variants_build(args: argparse.Namespace) -> int:
    from harness.config import load_suite
    from harness.coordinator.sweep import SweepOptions, build_suite
    from harness.errors import one_line

    suite = load_suite(args.suite)
    outcome = build_suite(suite, SweepOptions(cache_dir=args.cache_dir, ray_address=args.ray_address))
    table = Table("model", "variant", "size", "params", "MACs", "sparsity", "weights", "build s", "cached",
                  "host acc", "agree", "cosine", "SNR dB", "fidelity")
    for built in outcome.variants.values():
        v, r = built.variant, built.record
        table.add_row(escape(v.model), escape(v.chain), f"{v.size_bytes / 1024:.1f} KiB", f"{v.params:,}",
                      f"{v.macs:,}", _pct(r.get("sparsity")), v.precision, f"{v.build_s:.1f}",
                      "yes" if v.cached else "no", _pct(r.get("host_accuracy")), _pct(r.get("agreement")),
                      "-" if r.get("cosine") is None else f"{r['cosine']:.4f}",
                      "-" if r.get("snr_db") is None else f"{r['snr_db']:.1f}",
                      f"[yellow]degraded[/]: {escape(built.degraded)}" if built.degraded
                      else "-" if r.get("cosine") is None else "ok")
    out.print(table)
    for (model, chain), reason in outcome.failures.items():
        out.print(f"[red]failed[/] {escape(f'{model} [{chain}]: {one_line(reason)}')}")
    return EXIT_JOBS_FAILED if outcome.failures else EXIT_OK


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _write_report(store, run_id: str, path: Path | None, *, history_tag: str | None = None,  # noqa: ANN001
                  budget_ms: float | None = None, budget_mj: float | None = None) -> Path:
    """The run's page, or with ``history_tag`` the tag's dashboard ending at the run; budgets
    override the suite's ``report:`` settings field by field."""
    import re

    from reports.context import load_context
    from reports.html import write_report

    name = f"history-{history_tag}" if history_tag else run_id
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "report"  # a file name, whatever the store holds
    path = path or store.path.parent / "reports" / f"{name}.html"
    ctx = load_context(store, run_id, history_tag=history_tag, budget_ms=budget_ms, budget_mj=budget_mj)
    return write_report(ctx, path).resolve()


def cmd_report(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError
    from harness.store import open as open_store

    _must_exist(args.store)
    with open_store(args.store, readonly=True) as store:
        run_id = store.resolve_run(args.run, tag=args.tag)
        tag = (args.tag or store.run_info(run_id).get("tag")) if args.history else None
        if args.history and not tag:
            raise ConfigError(f"run {run_id} has no tag; give the history's tag with --tag", field="--history")
        path = _write_report(store, run_id, args.output, history_tag=tag, budget_ms=args.budget_ms,
                             budget_mj=args.budget_mj)
    out.print(f"{'dashboard' if tag else 'report'}: {escape(str(path))}")
    return EXIT_OK


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.gate import run_gate
    from harness.gate.outputs import junit_xml, markdown, terminal_table, write
    from harness.store import open as open_store

    _must_exist(args.store)
    with open_store(args.store, readonly=True) as store:  # it adds its verdicts, and writes nothing else
        result = run_gate(store, args.candidate, args.baseline, args.policy)
    out.print(terminal_table(result, show_pass=args.all))
    if args.junit:
        write(args.junit, junit_xml(result, strict=args.strict))
    if args.markdown:
        write(args.markdown, markdown(result))
    failed = result.count("regression") or (args.strict and (result.count("missing") or result.count("inconclusive")))
    return EXIT_REGRESSION if failed else EXIT_OK


def cmd_runs_list(args: argparse.Namespace) -> int:
    from harness.store import open as open_store

    _must_exist(args.store)
    with open_store(args.store, readonly=True) as store:
        runs = store.runs(tag=args.tag)
    if args.json:
        print(runs.to_json(orient="records"))
        return EXIT_OK
    table = Table("run", "tag", "suite", "status", "started (UTC)", "jobs", "ok", "failed", "commit")
    for r in runs.itertuples():
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.started))
        table.add_row(r.run, escape(r.tag or ""), escape(r.suite), r.status, started, str(r.jobs), str(int(r.ok or 0)),
                      str(int(r.failed or 0)), r.git_commit or "")
    out.print(table)
    return EXIT_OK


def cmd_runs_prune(args: argparse.Namespace) -> int:
    from harness.store import open as open_store

    _must_exist(args.store)
    with open_store(args.store) as store:
        deleted = store.prune(args.keep, tag=args.tag)
    scope = f"tag {args.tag!r}" if args.tag else "each tag"
    out.print(f"deleted {len(deleted)} run(s), kept the newest {args.keep} of {escape(scope)}")
    for run in deleted:
        out.print(f"  {run}")
    return EXIT_OK


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from harness.store import open as open_store
    from harness.store.schema import SCHEMA_VERSION

    _must_exist(args.store)
    with open_store(args.store) as store:  # opening to write migrates
        found = store.found_version
    if found == SCHEMA_VERSION:
        out.print(f"{escape(str(args.store))}: schema v{found}, up to date")
    else:
        out.print(f"{escape(str(args.store))}: migrated from schema v{found} to v{SCHEMA_VERSION}")
    return EXIT_OK


def cmd_inventory_check(args: argparse.Namespace) -> int:
    import json
    import os

    from harness.coordinator.bundle import build_agent
    from harness.transport.local import agent_env
    from harness.config import load_inventory
    from harness.errors import ConfigError
    from harness.fleet import check_inventory

    devices = load_inventory(args.inventory).resolved()
    known = [d.name for d in devices]
    unknown = [n for n in args.devices if n not in known]
    if unknown:
        raise ConfigError(f"unknown device {', '.join(map(repr, unknown))}; the inventory has: {', '.join(known)}",
                          field="--devices")
    devices = tuple(d for d in devices if not args.devices or d.name in args.devices)
    checks = check_inventory(devices, build_agent(args.cache_dir / "agent"), agent_env(os.environ), args.timeout)
    if args.json:
        print(json.dumps([c.to_json() for c in checks], indent=1))
    else:
        from harness.fleet.table import check_table

        out.print(check_table(checks))
        for c in checks:
            if not c.ok:
                out.print(f"  [red]{escape(c.name)}[/]: {escape(c.reason or 'failed')}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_JOBS_FAILED


def cmd_lease_break(args: argparse.Namespace) -> int:
    import os

    from devices.agent.lease import holder_text
    from harness.coordinator.bundle import build_agent
    from harness.transport.local import agent_env
    from harness.config import load_inventory
    from harness.errors import ConfigError
    from harness.fleet.leases import break_lease

    devices = {d.name: d for d in load_inventory(args.inventory).resolved()}
    if args.device not in devices:
        raise ConfigError(f"unknown device {args.device!r}; the inventory has: {', '.join(devices)}", field="DEVICE")
    event = break_lease(devices[args.device], build_agent(args.cache_dir / "agent"), agent_env(os.environ),
                        args.timeout)
    holder = event.get("holder")
    if holder:
        out.print(f"{escape(args.device)}: freed the lease held by {escape(holder_text(holder))} "
                  f"(job {escape(str(holder.get('job_id')))})")
    else:
        out.print(f"{escape(args.device)}: the lease was free")
    return EXIT_OK


def _must_exist(store: Path) -> None:
    from harness.errors import StoreError

    if not store.exists():
        raise StoreError(f"no results store at {store}; run 'harness sweep SUITE' first or pass --store")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Benchmark compressed vision models on edge boards.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def store_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--store", type=Path, default=DEFAULT_PATH, help=f"results database (default {DEFAULT_PATH})")

    def cache_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--cache-dir", type=Path, default=Path("~/.cache/edge-harness").expanduser(),
                        help="artifact cache (default ~/.cache/edge-harness)")

    s = sub.add_parser("sweep", help="build variants and measure them on the fleet")
    s.add_argument("suite", type=Path, help="suite file (YAML)")
    s.add_argument("--inventory", type=Path, help="inventory file (default: this machine only)")
    s.add_argument("--tag", help="label the run (e.g. nightly) for history and gates")
    store_arg(s)
    cache_arg(s)
    s.add_argument("--devices", type=_csv, default=(), help="only these devices (comma-separated)")
    s.add_argument("--tags", type=_csv, default=(), help="only devices with any of these tags")
    s.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one")
    s.add_argument("--resume", metavar="RUN",
                   help="finish the jobs a stopped run left undone (same suite and inventory; model files are matched "
                        "by content); refused while another live sweep writes the run")
    s.add_argument("--force", action="store_true",
                   help="with --resume: take the run over even though the sweep recorded as writing it looks alive "
                        f"(its pid runs on this host, or its heartbeat on another host is under {STALE_AFTER_S / 60:g} "
                        "minutes old)")
    s.add_argument("--report", type=Path, help="where to write the HTML report (default results/reports/RUN.html)")
    s.add_argument("--no-report", action="store_true", help="do not render the report")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=cmd_sweep)

    r = sub.add_parser(
        "report", help="render the HTML report of a run, or with --history the dashboard of a tag",
        description="One self-contained HTML page (works offline). A run's page: Pareto fronts per device, "
                    "recommendations, failures, results, device facts. With --history: the same for the latest run "
                    "of the tag (or RUN), plus trends across the tag's runs with the gate's regressions marked and a "
                    "comparison with the previous run.")
    r.add_argument("run", nargs="?", help="run id or unique prefix (default: the latest)")
    r.add_argument("-o", "--output", type=Path, help="output file (default results/reports/RUN.html; with "
                   "--history results/reports/history-TAG.html)")
    r.add_argument("--tag", help="with no RUN: the latest run with this tag; with --history: the history's tag")
    r.add_argument("--history", action="store_true",
                   help="dashboard of the tag's runs up to RUN (default: the tag of RUN, or of the latest run)")
    r.add_argument("--budget-ms", type=float, metavar="MS",
                   help="recommend per device the most accurate variant with p50 <= MS (overrides the suite's "
                        "report.latency_budget_ms)")
    r.add_argument("--budget-mj", type=float, metavar="MJ",
                   help="and with energy per inference <= MJ (overrides report.energy_budget_mj)")
    store_arg(r)
    r.set_defaults(func=cmd_report)

    g = sub.add_parser(
        "gate", help="pass or fail a candidate run against a baseline run or tag",
        description="Compare every (model, variant, device, runtime) of the candidate with the baseline (a run, or "
                    "the latest runs of a tag) under the policy; each metric is pass, regression, improvement, "
                    "inconclusive, missing or board-drift (a slowdown the board's canary shows too). Exit 1 on any "
                    "regression (and on missing or inconclusive with --strict), 0 otherwise.")
    g.add_argument("--candidate", required=True, metavar="RUN", help="run id, unique prefix or 'latest'")
    g.add_argument("--baseline", required=True, metavar="RUN_OR_TAG", help="a run, or a tag (its last 5 runs)")
    g.add_argument("--policy", type=Path, help="policy YAML (default: the candidate suite's 'gate:')")
    g.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML")
    g.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown summary (CI step summary)")
    g.add_argument("--strict", action="store_true",
                   help="missing and inconclusive configurations (noisy, unstable, not significant) fail the gate too")
    g.add_argument("--all", action="store_true", help="list passing comparisons too")
    store_arg(g)
    g.set_defaults(func=cmd_gate)

    v = sub.add_parser("variants", help="compressed variants")
    v_sub = v.add_subparsers(dest="variants_command", required=True, metavar="ACTION")
    vb = v_sub.add_parser("build", help="build a suite's variants (cached by content hash) without measuring")
    vb.add_argument("suite", type=Path, help="suite file (YAML)")
    cache_arg(vb)
    vb.add_argument("--ray-address", help="join this Ray cluster instead of starting a local one")
    vb.set_defaults(func=cmd_variants_build)

    runs = sub.add_parser("runs", help="the runs in the store")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    rl = runs_sub.add_parser("list", help="list runs")
    rl.add_argument("--tag", help="only runs with this tag")
    rl.add_argument("--json", action="store_true", help="machine-readable output")
    store_arg(rl)
    rl.set_defaults(func=cmd_runs_list)
    rp = runs_sub.add_parser("prune", help="delete old runs (and their results), keeping the newest N of each tag")
    rp.add_argument("--keep", type=int, required=True, metavar="N", help="runs to keep per tag (runs without a tag "
                    "count as one tag); runs still going are never deleted")
    rp.add_argument("--tag", help="prune only this tag's runs")
    store_arg(rp)
    rp.set_defaults(func=cmd_runs_prune)

    st = sub.add_parser("store", help="the results store itself")
    st_sub = st.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    sm = st_sub.add_parser(
        "migrate", help="upgrade the store's schema in place (report, gate and runs list never do; a sweep does)",
        description="Bring the results store to this harness's schema, one transaction per step. Read-only "
                    "commands (report, gate, runs list) read an older store only as far back as they can without "
                    "writing, and say to run this otherwise.")
    store_arg(sm)
    sm.set_defaults(func=cmd_store_migrate)

    inv = sub.add_parser("inventory", help="the fleet of devices")
    inv_sub = inv.add_subparsers(dest="inventory_command", required=True, metavar="ACTION")
    ic = inv_sub.add_parser(
        "check", help="reach every device in parallel and report its host facts and runtimes",
        description="Reach every device at once: round trip, arch, OS, kernel, CPU, RAM, Python/numpy, runtime "
                    "versions and devices, governor, thermal zones, power sensors. Exit 0 when every device is ok, "
                    "3 when some are not (each says why), 2 for bad input.")
    ic.add_argument("--inventory", type=Path, help="inventory file (default: this machine only)")
    ic.add_argument("--devices", type=_csv, default=(), help="only these devices (comma-separated)")
    ic.add_argument("--json", action="store_true", help="machine-readable output (a JSON list, one entry per device)")
    ic.add_argument("--timeout", type=_seconds, default=30.0, help="seconds per command on a device (default 30)")
    cache_arg(ic)
    ic.set_defaults(func=cmd_inventory_check)

    le = sub.add_parser("lease", help="the exclusive lease a job holds on its board")
    le_sub = le.add_subparsers(dest="lease_command", required=True, metavar="ACTION")
    lb = le_sub.add_parser(
        "break", help="free a board by hand, whoever holds it",
        description="Remove the board's lease (who holds it: 'harness inventory check'). Only for a holder known "
                    "to be gone: a lease whose coordinator stopped renewing it expires on its own after the "
                    "suite's lease.ttl_s, and breaking a live one lets two coordinators measure at once.")
    lb.add_argument("device", help="the device's name in the inventory")
    lb.add_argument("--inventory", type=Path, help="inventory file (default: this machine only)")
    lb.add_argument("--timeout", type=_seconds, default=30.0, help="seconds per command on the device (default 30)")
    cache_arg(lb)
    lb.set_defaults(func=cmd_lease_break)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help is 0, a usage error 2
        return int(e.code or 0)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return _guarded(args.func, args)


def _guarded(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The one boundary where errors become messages and exit codes."""
    try:
        return func(args)
    except Interrupted as e:
        err.print(f"[yellow]interrupted[/]: {escape(str(e))}")
        return e.exit_code
    except HarnessError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        return e.exit_code
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a lower layer's input error, else our bug: say so, keep the traceback
        known = as_harness_error(e)
        if known is not None:
            err.print(f"[bold red]error:[/] {escape(str(known))}")
            return known.exit_code
        with tempfile.NamedTemporaryFile("w", prefix="harness-error-", suffix=".log", delete=False) as f:
            traceback.print_exc(file=f)
        err.print(f"[bold red]internal error[/] (a bug in edge-harness; traceback in {f.name})")
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
