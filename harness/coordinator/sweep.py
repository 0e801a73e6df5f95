"""A sweep: plan, build, measure on every device through Ray, store each result as it lands."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from devices.bundle import build_agent
from harness import __version__
from harness.config import Device, Inventory, Suite
from harness.coordinator.builds import BuildOutcome, Built, build_all
from harness.coordinator.progress import SweepProgress
from harness.coordinator.ray_session import ray_session
from harness.coordinator.runner import DeviceRunner, Payload
from harness.errors import ConfigError
from harness.hashing import canonical_json
from harness.plan import make_plan, select_devices
from harness.records import Job, JobResult
from harness.store import Store

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
        return build_all(suite.models, suite.variants, opts.cache_dir / "artifacts", suite.recipes)


def run_sweep(suite: Suite, inventory: Inventory, store: Store, opts: SweepOptions) -> SweepOutcome:
    """Measure every planned job; returns once each job is stored as ok or failed."""
    devices = select_devices(inventory.resolved(), suite, opts.device_names, opts.device_tags)
    plan = make_plan(suite, devices)
    driver_env = dict(os.environ)
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
    with ray_session(opts.ray_address), progress:
        t0 = time.monotonic()
        progress.phase(f"building {len(suite.models)} model(s) x {len(suite.variants)} variant(s)")
        models = [m for m in suite.models if any(j.model == m.label for j in todo)]
        built = build_all(models, suite.variants, opts.cache_dir / "artifacts", suite.recipes)
        outcome.timings_s["build"] = time.monotonic() - t0

        queue: deque[Job] = deque()
        for job in todo:
            reason = built.failures.get((job.model, job.variant))
            if reason is not None:
                _finish(store, ids[job.key], job, JobResult.failed(f"variant build failed: {reason}"), outcome, progress)
            else:
                queue.append(job)
        t1 = time.monotonic()
        progress.phase("measuring")
        agent = build_agent(opts.cache_dir / "agent")
        _measure(queue, plan.devices, agent, built.variants, store, ids, run_id, suite.retries, driver_env, outcome,
                 progress)
        outcome.timings_s["measure"] = time.monotonic() - t1
    store.finish_run(run_id, "failed-jobs" if outcome.failed else "ok")
    return outcome


def _reopen(store: Store, ref: str, config: dict) -> str:
    """The run to resume; it must have been planned from the same suite and devices."""
    run_id = store.resolve_run(ref)
    if store.run_info(run_id)["config"] != json.loads(canonical_json(config)):
        raise ConfigError(f"run {run_id} was planned from another suite or inventory; resume it with the same files")
    store.reopen_run(run_id)
    return run_id


def _payload(built: Built) -> Payload:
    v = built.variant
    return Payload(artifact=Path(v.path), sha256=v.sha256, input_shape=tuple(v.input_shape),
                   eval_path=Path(v.eval_path) if v.eval_path else None, variant=built.record,
                   format=v.format, weights=v.weights_path)


def _measure(queue: deque[Job], devices: tuple[Device, ...], agent: Path, variants: dict[tuple[str, str], Built],
             store: Store, ids: dict[str, int], run_id: str, retries: int, driver_env: dict[str, str],
             outcome: SweepOutcome, progress: SweepProgress) -> None:
    """One actor per device holds it exclusively; each takes the next job meant for it."""
    import ray

    # Actors only wait on their device: no CPU reserved, or 16 boards would not fit on 2 cores.
    actor_cls = ray.remote(num_cpus=0, max_restarts=0)(DeviceRunner)
    actors = {d.name: actor_cls.remote(d, agent, driver_env) for d in devices}
    attempts: dict[str, int] = {}
    busy: dict[object, tuple[str, Job]] = {}
    while queue or busy:
        for name, actor in actors.items():
            if any(dev == name for dev, _ in busy.values()):
                continue
            job = next((j for j in queue if j.device == name), None)
            if job is None:
                continue
            queue.remove(job)
            jid = ids[job.key]
            attempts[job.key] = attempts.get(job.key, 0) + 1
            store.job_started(jid)
            progress.started(job)
            ref = actor.run_job.remote(job, f"{run_id}-{jid}", _payload(variants[(job.model, job.variant)]))
            busy[ref] = (name, job)
        done, _ = ray.wait(list(busy), num_returns=1, timeout=1.0)
        for ref in done:
            _, job = busy.pop(ref)
            try:
                result: JobResult = ray.get(ref)
            except ray.exceptions.RayError as e:
                result = JobResult("failed", f"device actor died: {e}", details={"retryable": True})
            result.attempts = attempts[job.key]
            if result.status == "failed" and result.details.get("retryable") and attempts[job.key] <= retries:
                log.warning("retrying %s after: %s", job.label(), result.error)
                queue.appendleft(job)
                continue
            _finish(store, ids[job.key], job, result, outcome, progress)
    for actor in actors.values():
        ray.kill(actor)


def _finish(store: Store, jid: int, job: Job, result: JobResult, outcome: SweepOutcome,
            progress: SweepProgress) -> None:
    store.record(jid, result)
    if result.status == "ok":
        outcome.ok += 1
    else:
        outcome.failed.append((job.label(), result.error or "unknown"))
    progress.finished(job, result)
