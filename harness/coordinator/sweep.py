"""A sweep: plan, build, measure on every device through Ray, store each result as it lands."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from harness.coordinator.bundle import build_agent
from harness import __version__
from harness.config import Inventory, Suite
from harness.coordinator.builds import BuildOutcome, Built, build_all
from harness.coordinator.progress import SweepProgress
from harness.coordinator.ray_session import ray_session
from harness.coordinator.actors import DeviceActors
from harness.coordinator.files import FileRef
from harness.coordinator.runner import Payload
from harness.coordinator.repeats import as_repeat, combine
from harness.coordinator.scheduler import FaultPolicy, Scheduler
from harness.coordinator.units import Unit, order_units
from harness.errors import ConfigError
from harness.hashing import canonical_json
from harness.canary import CANARY, CANARY_VARIANT
from harness.plan import Plan, make_plan, select_devices
from harness.records import Job, JobResult, Repeat
from harness.store import Store
from harness.transport.local import agent_env
from harness.tasks.plan import TaskPlan, plan_tasks

log = logging.getLogger("edge_harness.coordinator")


@dataclass
class SweepOptions:
    tag: str | None = None
    cache_dir: Path = Path("~/.cache/edge-harness").expanduser()  # artifacts/ and agent/ below
    device_names: tuple[str, ...] = ()
    device_tags: tuple[str, ...] = ()
    ray_address: str | None = None
    suite_path: str | None = None
    quiet: bool = False
    resume: str | None = None  # a run id (or prefix) whose missing jobs to finish


@dataclass
class SweepOutcome:
    run_id: str
    ok: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (job label, reason)
    skipped: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # boards that ended the sweep down -> why
    degraded: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, variant) past the fidelity limit -> why


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def build_suite(suite: Suite, opts: SweepOptions) -> BuildOutcome:
    """Build (or find in the cache) every variant of the suite, measuring nothing."""
    with ray_session(opts.ray_address):
        return build_all(suite.models, suite.variants, opts.cache_dir / "artifacts", suite.recipes, suite.fidelity)


def run_sweep(suite: Suite, inventory: Inventory, store: Store, opts: SweepOptions) -> SweepOutcome:
    """Measure every planned job; returns once each job is stored as ok or failed."""
    devices = select_devices(inventory.resolved(), suite, opts.device_names, opts.device_tags)
    plan = make_plan(suite, devices)
    driver_env = agent_env(os.environ)  # captured here: a Ray worker's own has OMP_NUM_THREADS=1 injected
    config = {"suite": suite.model_dump(mode="json"), "devices": [d.model_dump(mode="json") for d in plan.devices]}
    if opts.resume:
        run_id = _reopen(store, opts.resume, config)
    else:
        run_id = store.create_run(
            suite=suite.name, suite_path=opts.suite_path, tag=opts.tag, host=platform.node(),
            project_version=__version__, git_commit=_git_commit(), config=config,
        )  # fmt: skip
    ids = store.add_jobs(run_id, plan.jobs)
    done = {job.key for _, job, status in store.jobs(run_id) if status in ("ok", "failed")}
    todo = [job for job in plan.jobs if job.key not in done]
    outcome = SweepOutcome(run_id, skipped=plan.skipped)
    progress = SweepProgress(total=len(todo), quiet=opts.quiet)
    ctx = _Context(store, ids, run_id, outcome, progress, {j.key: store.stored_repeats(ids[j.key]) for j in todo})
    with ray_session(opts.ray_address), progress:
        agent = build_agent(opts.cache_dir / "agent")
        actors = DeviceActors(plan.devices, FileRef.of(agent), driver_env, _portable(opts.cache_dir / "staged"),
                              suite.faults.grace_s, suite.lease, run_id) if todo else None
        try:
            _build_and_measure(suite, plan, todo, actors, opts, ctx)
        finally:
            if actors is not None:
                actors.kill_all()
    store.finish_run(run_id, "failed-jobs" if outcome.failed else "ok", outcome.down)
    return outcome


def _build_and_measure(suite: Suite, plan: Plan, todo: list[Job], actors: DeviceActors | None, opts: SweepOptions,
                       ctx: _Context) -> None:
    outcome, progress = ctx.outcome, ctx.progress
    t0 = time.monotonic()
    progress.phase(f"building {len(suite.models)} model(s) x {len(suite.variants)} variant(s)")
    models = [m for m in suite.models if any(j.model == m.label for j in todo)]
    built = build_all(models, suite.variants, opts.cache_dir / "artifacts", suite.recipes, suite.fidelity)
    outcome.degraded = {key: b.degraded for key, b in built.variants.items() if b.degraded}
    canary_key = (CANARY.label, CANARY_VARIANT)
    if any(j.model == CANARY.label or j.settings.canary_block_s is not None for j in todo):
        canary = build_all([CANARY], [CANARY_VARIANT], opts.cache_dir / "artifacts")
        built.variants.update(canary.variants)
        built.failures.update(canary.failures)
    tasks, task_failures = plan_tasks(models, opts.cache_dir / "artifacts")  # eval sets prepared (harness.tasks)
    outcome.timings_s["build"] = time.monotonic() - t0

    queue: list[Job] = []
    for job in todo:
        reason = built.failures.get((job.model, job.variant))
        if reason is None and job.model in task_failures:
            reason = f"the eval set: {task_failures[job.model]}"
        if reason is None and job.settings.canary_block_s is not None and canary_key in built.failures:
            reason = f"the interleaved canary: {built.failures[canary_key]}"
        if reason is not None:
            _finish(ctx, job, JobResult.failed(f"variant build failed: {reason}"))
        else:
            queue.append(job)
    t1 = time.monotonic()
    progress.phase("measuring")
    if queue and actors is not None:
        _measure(queue, plan, actors, built.variants, suite, ctx, tasks)
    outcome.timings_s["measure"] = time.monotonic() - t1


def _portable(path: Path) -> str:
    """A path under the home directory as ``~/...``, so another Ray node expands it to its own home."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _reopen(store: Store, ref: str, config: dict) -> str:
    """The run to resume; it must have been planned from the same suite and devices."""
    run_id = store.resolve_run(ref)
    if not _same_plan(store.run_info(run_id)["config"], json.loads(canonical_json(config))):
        raise ConfigError(f"run {run_id} was planned from another suite or inventory; resume it with the same files")
    store.reopen_run(run_id)
    return run_id


def _same_plan(stored: object, current: object) -> bool:
    """The stored plan equals the current one, except for keys a newer harness added to its
    formats that the files leave unset (an older run stays resumable after an upgrade)."""
    if isinstance(stored, dict) and isinstance(current, dict):
        extra = set(current) - set(stored)
        return all(current[k] in (None, {}, [], ()) for k in extra) and set(stored) <= set(current) and all(
            _same_plan(stored[k], current[k]) for k in stored)
    if isinstance(stored, list) and isinstance(current, list):
        return len(stored) == len(current) and all(_same_plan(a, b) for a, b in zip(stored, current, strict=True))
    return stored == current


def _payloads(variants: dict[tuple[str, str], Built],
              tasks: dict[str, TaskPlan] | None = None) -> dict[tuple[str, str], Payload]:
    """Each built variant's files as content-addressed references (hashed once per sweep);
    a model with a task gets its task and the task's eval set (``harness.tasks``)."""
    hashed: dict[Path, FileRef] = {}

    def ref(path: str | None, sha256: str | None = None) -> FileRef | None:
        if not path:
            return None
        if Path(path) not in hashed:
            hashed[Path(path)] = FileRef.of(Path(path), sha256)
        return hashed[Path(path)]

    out = {}
    for key, built in variants.items():
        v = built.variant
        artifact = ref(v.path, v.sha256)
        assert artifact is not None
        task = (tasks or {}).get(key[0])
        out[key] = Payload(artifact=artifact, input_shape=tuple(v.input_shape),
                           eval=ref(str(task.eval_path)) if task else ref(v.eval_path),
                           variant=built.record, format=v.format, weights=ref(v.weights_path), task=task)
    return out


def _payload_of(job: Job, payloads: dict[tuple[str, str], Payload]) -> Payload:
    """The job's files, with the canary's when it is interleaved with the job."""
    payload = payloads[(job.model, job.variant)]
    if job.settings.canary_block_s is not None:
        return dataclasses.replace(payload, canary=payloads[(CANARY.label, CANARY_VARIANT)])
    return payload


@dataclass
class _Context:
    """What the measuring loop writes to."""

    store: Store
    ids: dict[str, int]
    run_id: str
    outcome: SweepOutcome
    progress: SweepProgress
    repeats: dict[str, list[Repeat]]  # job key -> its repeats measured so far (stored ones included)
    closed: set[str] = field(default_factory=set)  # keys of jobs stored as ok or failed in this sweep


def _measure(jobs: list[Job], plan: Plan, actors: DeviceActors, variants: dict[tuple[str, str], Built], suite: Suite,
             ctx: _Context, tasks: dict[str, TaskPlan] | None = None) -> None:
    """One actor per board holds it exclusively; a free board takes the next job it can run.

    The loop only waits on Ray with a timeout, and every down board is re-probed a bounded
    number of times, so the sweep ends even when the whole fleet is gone.
    """
    import ray

    payloads = _payloads(variants, tasks)
    actors.serve_files(list({f for p in payloads.values() for f in (p.artifact, p.eval, p.weights) if f is not None}))
    f = suite.faults
    for job in jobs:  # every repeat already stored (a run killed before storing the job itself)
        if ctx.repeats[job.key] and len(ctx.repeats[job.key]) >= job.settings.repeats:
            reps = ctx.repeats[job.key]
            _finish(ctx, job, combine(reps, JobResult("ok", metrics=dict(reps[-1].summary))))
    done = {key: [r.index for r in reps] for key, reps in ctx.repeats.items()}
    units = order_units([j for j in jobs if j.key not in ctx.closed], suite.measure.order, done)
    sched = Scheduler(units, plan.boards, FaultPolicy(suite.retries, f.down_after, f.reprobe_s, f.reprobe_max),
                      time.monotonic)
    for name, reason in actors.unplaceable.items():
        sched.give_up(name, reason)
    running: dict[object, tuple[str, Unit, float]] = {}
    probing: dict[object, str] = {}
    while not sched.idle:
        for unit, attempts, reason in sched.stranded():
            _finish(ctx, unit.job, JobResult("failed", reason, attempts=max(attempts, 1)))
        for name in sched.due_probes():
            log.info("re-probing %s", name)
            probing[actors.handles[name].probe.remote()] = name
        for name in actors.handles:
            unit = sched.next_unit(name)
            if unit is None:
                continue
            job = unit.job
            jid = ctx.ids[job.key]
            ctx.store.job_started(jid, name, first=not ctx.repeats[job.key])
            ctx.progress.started(job, name, unit.label())
            job_id = f"{ctx.run_id}-{jid}" + (f"-r{unit.repeat}" if job.settings.repeats > 1 else "")
            ref = actors.handles[name].run_job.remote(job, job_id, _payload_of(job, payloads))
            running[ref] = (name, unit, time.time())
        if sched.idle:
            break
        ctx.progress.notes(actors.notes())
        pending = [*running, *probing]
        wake = sched.next_wake()
        timeout = 1.0 if wake is None else max(0.05, min(1.0, wake - time.monotonic()))
        if not pending:
            time.sleep(timeout)
            continue
        done, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        for ref in done:
            if ref in probing:
                _probed(sched, actors, probing.pop(ref), ref)
                continue
            name, unit, started = running.pop(ref)
            _unit_done(sched, actors, ctx, name, unit, started, ref)
    ctx.outcome.down = sched.down_boards()


def _probed(sched: Scheduler, actors: DeviceActors, name: str, ref: object) -> None:
    import ray

    try:
        error = ray.get(ref)
    except ray.exceptions.RayError as e:
        actors.spawn(name)
        error = f"device actor died: {e}"
    if error:
        log.warning("%s is still down: %s", name, error)
    else:
        log.warning("%s is back up", name)
    sched.probed(name, error)


def _unit_done(sched: Scheduler, actors: DeviceActors, ctx: _Context, name: str, unit: Unit, started: float,
               ref: object) -> None:
    import ray

    job = unit.job
    try:
        result: JobResult = ray.get(ref)
    except ray.exceptions.RayError as e:
        actors.spawn(name)  # the old actor is gone; the board itself may be fine
        result = JobResult("failed", f"device actor died: {e}", details={"retryable": True, "board": name})
    result.attempts = sched.attempts(name)
    retryable = result.error if result.status == "failed" and result.details.get("retryable") else None
    verdict = sched.finished(name, retryable)
    if sched.boards[name].state == "down":
        log.warning("%s is down after %d failures in a row: %s", name, sched.policy.down_after, retryable)
    if verdict == "retry":
        log.warning("retrying %s after a failure on %s: %s", unit.label(), name, retryable)
        return
    if job.key in ctx.closed:
        return  # a repeat of a job that has failed meanwhile (another repeat, on another board)
    if result.status != "ok":
        sched.cancel(job.key)
        result.repeats = ctx.repeats[job.key]
        _finish(ctx, job, result)
        return
    reps = ctx.repeats[job.key]
    reps.append(as_repeat(result, unit.repeat, result.details.get("board", name), started, time.time()))
    if len(reps) < job.settings.repeats:
        ctx.store.record_repeat(ctx.ids[job.key], reps[-1])
        return
    _finish(ctx, job, combine(reps, result))


def _finish(ctx: _Context, job: Job, result: JobResult) -> None:
    ctx.closed.add(job.key)
    if result.status == "ok":
        result.metrics["degraded"] = ctx.outcome.degraded.get((job.model, job.variant))
    ctx.store.record(ctx.ids[job.key], result)
    if result.status == "ok":
        ctx.outcome.ok += 1
    else:
        ctx.outcome.failed.append((job.label(), result.error or "unknown"))
    ctx.progress.finished(job, result)
