"""A sweep: plan, build, measure on every device through Ray, store each result as it lands."""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.axes import build_key, shape_point
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
from harness.errors import ConfigError, Interrupted, StoreWriteError
from harness.hashing import canonical_json, sha256_file
from harness.canary import CANARY, CANARY_VARIANT
from harness.plan import Plan, make_plan, select_devices
from harness.records import Job, JobResult, Repeat
from harness.store import DEFAULT_PATH, Store
from harness.store.store import environmental
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
    force: bool = False  # with resume: take the run over even though its recorded writer looks alive
    inventory_path: str | None = None  # for the resume command printed after a stop


@dataclass
class SweepOutcome:
    run_id: str
    ok: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (job label, reason)
    skipped: tuple[str, ...] = ()
    timings_s: dict[str, float] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # boards that ended the sweep down -> why
    # (model, variant, runtime) past the fidelity limit as that runtime runs it -> why
    degraded: dict[tuple[str, str, str], str] = field(default_factory=dict)
    left: int = 0  # jobs not run because the sweep was interrupted (Ctrl-C): the run's status is 'interrupted'
    resume: str = ""  # the command that finishes the run


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
    """Measure every planned job; returns once each job is stored as ok or failed, or after a
    first Ctrl-C once the running jobs are stored (``outcome.left``: the jobs not run).

    A second Ctrl-C stops at once (``Interrupted``); SQLite failing under the sweep stops it
    with a ``StoreWriteError``. Either way what was stored stays and the run resumes."""
    if opts.force and not opts.resume:
        raise ConfigError("--force takes over a run being resumed: give it with --resume RUN", field="--force")
    devices = select_devices(inventory.resolved(), suite, opts.device_names, opts.device_tags, opts.suite_path)
    plan = make_plan(suite, devices, opts.suite_path)
    driver_env = agent_env(os.environ)  # captured here: a Ray worker's own has OMP_NUM_THREADS=1 injected
    config = plan_config(suite, plan)
    if opts.resume:
        run_id = _reopen(store, opts.resume, config, force=opts.force)
    else:
        run_id = store.create_run(
            suite=suite.name, suite_path=opts.suite_path, tag=opts.tag, host=platform.node(),
            project_version=__version__, git_commit=_git_commit(), config=config,
        )  # fmt: skip
    outcome = SweepOutcome(run_id, skipped=plan.skipped, resume=resume_command(opts, store.path, run_id))
    with store.keeping_alive(run_id), StopOnSigint() as stop, stopping_resumable(store, outcome):
        ids = store.add_jobs(run_id, plan.jobs)
        done = {job.key for _, job, status in store.jobs(run_id) if status in ("ok", "failed")}
        todo = [job for job in plan.jobs if job.key not in done]
        progress = SweepProgress(total=len(todo), quiet=opts.quiet)
        ctx = _Context(store, ids, run_id, outcome, progress, {j.key: store.stored_repeats(ids[j.key]) for j in todo},
                       stop=stop)
        with ray_session(opts.ray_address), progress:
            agent = build_agent(opts.cache_dir / "agent")
            actors = DeviceActors(plan.devices, FileRef.of(agent), driver_env, _portable(opts.cache_dir / "staged"),
                                  suite.faults.grace_s, suite.lease, run_id) if todo else None
            try:
                _build_and_measure(suite, plan, todo, actors, opts, ctx)
            finally:
                if actors is not None:
                    actors.kill_all()
        outcome.left = sum(job.key not in ctx.closed for job in todo) if stop.requested else 0
        if outcome.left:  # stopped by a first Ctrl-C before every job ran
            store.interrupt_run(run_id, outcome.down)
        else:
            store.finish_run(run_id, "failed-jobs" if outcome.failed else "ok", outcome.down)
    return outcome


def plan_config(suite: Suite, plan: Plan) -> dict:
    """What a run stores of its plan (``runs.config_json``), and what a resume compares: the
    suite, the devices, and the content hash of each model's files (``sources``)."""
    return {"suite": suite.model_dump(mode="json"), "devices": [d.model_dump(mode="json") for d in plan.devices],
            "sources": _sources(suite)}


# A model's keys that name a file (``eval`` only when it is an .npz file, not a folder or a COCO set).
_SOURCE_FILES = ("onnx", "tflite", "eval")


def _sources(suite: Suite) -> dict[str, dict[str, str]]:
    """Per model, the sha256 of each file it names: a resume matches files by content, not path."""
    out: dict[str, dict[str, str]] = {}
    for model in suite.models:
        files = {key: sha256_file(path) for key in _SOURCE_FILES
                 if isinstance(path := getattr(model, key, None), Path) and path.is_file()}
        if files:
            out[model.label] = files
    return out


def resume_command(opts: SweepOptions, store: Path, run_id: str) -> str:
    """The command line that finishes ``run_id``: same suite, inventory, device filters and store."""
    args = ["harness", "sweep", opts.suite_path or "SUITE"]
    if opts.inventory_path:
        args += ["--inventory", opts.inventory_path]
    if opts.device_names:
        args += ["--devices", ",".join(opts.device_names)]
    if opts.device_tags:
        args += ["--tags", ",".join(opts.device_tags)]
    if store != DEFAULT_PATH:
        args += ["--store", str(store)]
    if opts.cache_dir != SweepOptions.cache_dir:
        args += ["--cache-dir", str(opts.cache_dir)]
    return shlex.join([*args, "--resume", run_id])


class StopOnSigint:
    """Ctrl-C during a sweep. The first sets ``requested``: no new job starts, the running ones
    finish and are stored; the second raises ``KeyboardInterrupt`` at once. Installed only in the
    main thread (where Python delivers signals); the previous handler comes back on exit.

    Python runs a handler between bytecodes, once for however many signals arrived meanwhile:
    two Ctrl-Cs while the main thread sits in ``ray.wait`` would read as one. So every signal is
    counted on a wakeup pipe (``signal.set_wakeup_fd`` writes one byte per signal, from C)."""

    MESSAGE = b"\nstopping: no new job starts; the running ones finish and are stored (Ctrl-C again: stop at once)\n"

    def __init__(self) -> None:
        self.requested = False
        self._previous: Callable | int | None = None
        self._installed = False
        self._pipe: tuple[int, int] | None = None
        self._previous_fd = -1

    def __enter__(self) -> StopOnSigint:
        if threading.current_thread() is threading.main_thread():
            self._pipe = os.pipe()
            for fd in self._pipe:
                os.set_blocking(fd, False)
            self._previous_fd = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            signal.set_wakeup_fd(self._previous_fd)
            for fd in self._pipe or ():
                os.close(fd)
            self._installed, self._pipe = False, None

    def _signals(self) -> int:
        """SIGINTs counted on the wakeup pipe since the last call (at least this one)."""
        seen = b""
        while self._pipe is not None:
            try:
                chunk = os.read(self._pipe[0], 64)
            except BlockingIOError:
                break
            if not chunk:
                break
            seen += chunk
        return max(1, seen.count(bytes([signal.SIGINT])))

    def _handle(self, signum: int, frame: object) -> None:
        count = self._signals()
        if self.requested or count > 1:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True
        try:
            os.write(sys.stderr.fileno(), self.MESSAGE)  # no lock taken: the handler may run inside a print
        except (OSError, ValueError):
            pass


class stopping_resumable:  # noqa: N801 - used as a context manager, like contextlib's
    """A sweep stopped by a second Ctrl-C or by SQLite failing: the run is left resumable, and
    the error says what was kept and the command that finishes it."""

    def __init__(self, store: Store, outcome: SweepOutcome):
        self.store, self.outcome = store, outcome

    def __enter__(self) -> stopping_resumable:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        run, stored = self.outcome.run_id, self.outcome.ok + len(self.outcome.failed)
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            try:
                self.store.interrupt_run(run, self.outcome.down)
                status = "status 'interrupted'"
            except (StoreWriteError, sqlite3.Error):
                status = "status 'running'"
            raise Interrupted(f"stopped at once: run {run} keeps the {stored} job(s) stored in this sweep "
                              f"({status}); jobs that were running start again on resume: "
                              f"{self.outcome.resume}") from None
        if isinstance(exc, StoreWriteError) or (isinstance(exc, sqlite3.Error) and environmental(exc)):
            text = str(exc) if isinstance(exc, StoreWriteError) else f"results store {self.store.path}: {exc}"
            raise StoreWriteError(f"{text}; the sweep stopped, the {stored} job(s) stored before stay and run {run} "
                                  f"is left resumable: {self.outcome.resume}") from None
        return False


def _build_and_measure(suite: Suite, plan: Plan, todo: list[Job], actors: DeviceActors | None, opts: SweepOptions,
                       ctx: _Context) -> None:
    outcome, progress = ctx.outcome, ctx.progress
    t0 = time.monotonic()
    progress.phase(f"building {len(suite.models)} model(s) x {len(suite.variants)} variant(s)")
    models = [m for m in suite.models if any(j.model == m.label for j in todo)]
    planned: dict[tuple[str, str], tuple[str, ...]] = {}
    for job in todo:
        planned[(job.model, job.variant)] = (*planned.get((job.model, job.variant), ()), job.runtime)
    points = sorted({shape_point(j.settings.axes) for j in todo}, key=repr)  # batch and resolution axes' values
    built = build_all(models, suite.variants, opts.cache_dir / "artifacts", suite.recipes, suite.fidelity,
                      planned, suite.runtime_options, points or [()])
    outcome.degraded = {(*key, rt): reason for key, b in built.variants.items()
                        for rt in dict.fromkeys(planned.get(key, ())) if (reason := b.degraded_for(rt))}
    canary_key = (CANARY.label, CANARY_VARIANT)
    if any(j.model == CANARY.label or j.settings.canary_block_s is not None for j in todo):
        canary = build_all([CANARY], [CANARY_VARIANT], opts.cache_dir / "artifacts")
        built.variants.update(canary.variants)
        built.failures.update(canary.failures)
    tasks, task_failures = plan_tasks(models, opts.cache_dir / "artifacts")  # eval sets prepared (harness.tasks)
    outcome.timings_s["build"] = time.monotonic() - t0

    queue: list[Job] = []
    for job in todo:
        reason = built.failures.get(build_key(job.model, job.variant, job.settings.axes))
        if reason is None and job.model in task_failures:
            reason = f"the eval set: {task_failures[job.model]}"
        if reason is None and job.settings.canary_block_s is not None and canary_key in built.failures:
            reason = f"the interleaved canary: {built.failures[canary_key]}"
        if reason is not None:
            detail = built.details.get(build_key(job.model, job.variant, job.settings.axes))
            _finish(ctx, job, JobResult.failed(f"variant build failed: {reason}",
                                               **({"error_full": detail} if detail else {})))
        else:
            queue.append(job)
    t1 = time.monotonic()
    progress.phase("measuring")
    if queue and actors is not None and not ctx.stop.requested:
        _measure(queue, plan, actors, built.variants, suite, ctx, tasks)
    outcome.timings_s["measure"] = time.monotonic() - t1


def _portable(path: Path) -> str:
    """A path under the home directory as ``~/...``, so another Ray node expands it to its own home."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _reopen(store: Store, ref: str, config: dict, force: bool = False) -> str:
    """The run to resume; it must have been planned from the same suite and devices, with model
    files of the same content (wherever they are now), and no live process may be writing it."""
    run_id = store.resolve_run(ref)
    stored = store.run_info(run_id)["config"]
    hashed = isinstance(stored, dict) and "sources" in stored  # runs from before hashing compare paths
    old, new = _by_content(stored, hashed), _by_content(config, hashed)
    if not _same_plan(old, new):
        where = _difference(old, new)
        raise ConfigError(f"run {run_id} was planned from another suite or inventory"
                          f"{f' (they differ at {where})' if where else ''}; resume it with the same files")
    store.reopen_run(run_id, force=force)
    return run_id


def _by_content(config: object, hashed: bool) -> object:
    """A copy of a stored plan to compare; ``hashed``: each model file's path replaced by its
    content hash (from ``sources``), so a moved but identical file matches and a changed one does not."""
    config = json.loads(canonical_json(config))
    if not isinstance(config, dict):
        return config
    sources = config.pop("sources", None) or {}
    if hashed:
        for model in (config.get("suite") or {}).get("models") or []:
            label = model.get("name") or model.get("builtin") if isinstance(model, dict) else None
            for key, digest in sources.get(label, {}).items():
                if key in model:
                    model[key] = f"sha256:{digest}"
    return config


def _difference(stored: object, current: object, where: str = "") -> str | None:
    """The first place (``suite.models.0.onnx``) where two plans differ, for the error."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for k in [*stored, *(k for k in current if k not in stored)]:
            if k not in current:
                return f"{where}{k}"
            if k not in stored:
                if current[k] not in (None, {}, [], ()):  # a key a newer harness added, set
                    return f"{where}{k}"
                continue
            if found := _difference(stored[k], current[k], f"{where}{k}."):
                return found
        return None
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        for i, (a, b) in enumerate(zip(stored, current, strict=True)):
            if found := _difference(a, b, f"{where}{i}."):
                return found
        return None
    return None if stored == current else where.rstrip(".") or None


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
        off_size = "resolution" in dict(key[2:]) and v.eval_path is None  # built away from the model's own size
        task = None if off_size else (tasks or {}).get(key[0])
        out[key] = Payload(artifact=artifact, input_shape=tuple(v.input_shape),
                           eval=ref(str(task.eval_path)) if task else ref(v.eval_path),
                           variant=built.record, format=v.format, weights=ref(v.weights_path), task=task,
                           inputs=v.inputs or ())
    return out


def _payload_of(job: Job, payloads: dict[tuple[str, str], Payload]) -> Payload:
    """The job's files, with the canary's when it is interleaved with the job."""
    payload = payloads[build_key(job.model, job.variant, job.settings.axes)]  # built at the job's batch and resolution
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
    stop: StopOnSigint = field(default_factory=StopOnSigint)  # requested: start no new job (Ctrl-C)


def _measure(jobs: list[Job], plan: Plan, actors: DeviceActors, variants: dict[tuple[str, str], Built], suite: Suite,
             ctx: _Context, tasks: dict[str, TaskPlan] | None = None) -> None:
    """Each board runs one job at a time (on its own thread of its site's actor); a free
    board takes the next job it can run.

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
        stopping = ctx.stop.requested  # Ctrl-C: start nothing, wait for the running jobs to be stored
        if stopping and not running:
            break
        for unit, attempts, reason in sched.stranded():
            _finish(ctx, unit.job, JobResult("failed", reason, attempts=max(attempts, 1)))
        for name in [] if stopping else sched.due_probes():
            log.info("re-probing %s", name)
            probing[actors.probe(name)] = name
        for name in [] if stopping else actors.boards:
            unit = sched.next_unit(name)
            if unit is None:
                continue
            job = unit.job
            jid = ctx.ids[job.key]
            ctx.store.job_started(jid, name, first=not ctx.repeats[job.key])
            ctx.progress.started(job, name, unit.label())
            job_id = f"{ctx.run_id}-{jid}" + (f"-r{unit.repeat}" if job.settings.repeats > 1 else "")
            ref = actors.run_job(name, job, job_id, _payload_of(job, payloads))
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
        error = actors.lost(name, e)  # the site's actor died (started again), or the call failed in Ray
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
    except ray.exceptions.RayError as e:  # not the board's failure (that is a result): its site actor's
        result = JobResult("failed", actors.lost(name, e), details={"retryable": True, "board": name})
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
        result.metrics["degraded"] = ctx.outcome.degraded.get((job.model, job.variant, job.runtime))
    ctx.store.record(ctx.ids[job.key], result)
    if result.status == "ok":
        ctx.outcome.ok += 1
    else:
        ctx.outcome.failed.append((job.label(), result.error or "unknown"))
    ctx.progress.finished(job, result)
