"""The board's work directory does not grow without end: old job specs and dead partial
uploads are removed (tidy.py), by ``agent serve --workdir`` when it starts and after each job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agent_testlib import REPO, make_spec, write_classifier

from devices.agent import tidy as tidy_mod
from devices.agent.tidy import KEEP_SPECS, tidy

NOW = 1_800_000_000.0
HOUR, DAY = 3600.0, 86400.0


def touch(path: Path, age_s: float, now: float = NOW) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    os.utime(path, (now - age_s, now - age_s))
    return path


def test_old_specs_beyond_the_newest_and_dead_partial_uploads_go(tmp_path: Path) -> None:
    jobs, cache = tmp_path / "jobs", tmp_path / "cache"
    young = [touch(jobs / f"young-{i}.json", 600 + i) for i in range(20)]  # another coordinator's, maybe waiting
    hours = [touch(jobs / f"hours-{i:03d}.json", 2 * HOUR + i) for i in range(130)]  # newest first by i
    days = [touch(jobs / f"days-{i}.json", 2 * DAY + i) for i in range(5)]
    queued = days[0]  # a spec this server has still to run
    partial = touch(cache / "abc.onnx.tmp-1f2e3d", 2 * HOUR)  # an upload cut by a lost link
    live = touch(cache / "def.onnx.tmp-4a5b6c", 600)  # an upload under way
    spec_tmp = touch(jobs / "x.json.tmp-9", 2 * HOUR)
    cached = touch(cache / "abc.onnx", 30 * DAY)  # the cache itself is never tidied
    notes = touch(jobs / "notes.txt", 30 * DAY)
    outside = touch(tmp_path / "elsewhere.json", 30 * DAY)
    (jobs / "link.json").symlink_to(outside)  # only regular files go, never through a link
    os.utime(jobs / "link.json", (NOW - 30 * DAY, NOW - 30 * DAY), follow_symlinks=False)

    removed = tidy(str(tmp_path), keep=[str(queued)], now=NOW)

    kept_hours = hours[:KEEP_SPECS - len(young)]  # the newest KEEP_SPECS specs in all
    assert all(p.exists() for p in young + kept_hours + [queued, live, cached, notes, outside])
    assert not any(p.exists() for p in hours[len(kept_hours):] + days[1:] + [partial, spec_tmp])
    assert (jobs / "link.json").is_symlink()
    assert removed == len(hours) - len(kept_hours) + len(days) - 1 + 2
    assert tidy(str(tmp_path), keep=[str(queued)], now=NOW + 60) == 0  # nothing more to do a minute later
    assert tidy(str(tmp_path), now=NOW + 60) == 1 and not queued.exists()  # once run, the old spec goes too
    assert tidy(str(tmp_path / "nowhere"), now=NOW) == 0  # no work directory yet: nothing, and no error


def test_a_day_old_spec_goes_even_among_the_newest(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    recent = [touch(jobs / f"r{i}.json", 2 * HOUR) for i in range(3)]
    stale = touch(jobs / "stale.json", DAY + 60)
    assert tidy(str(tmp_path), now=NOW) == 1
    assert not stale.exists() and all(p.exists() for p in recent)


def test_serve_with_a_workdir_tidies_it_at_start_and_after_each_job(tmp_path: Path) -> None:
    workdir = tmp_path / "board"
    now = time.time()
    old_specs = [touch(workdir / "jobs" / f"old-{i}.json", 2 * DAY, now) for i in range(3)]
    partial = touch(workdir / "cache" / "m.onnx.tmp-77", 2 * HOUR, now)
    proc = subprocess.Popen([sys.executable, "-m", "devices.agent", "serve", "--workdir", str(workdir)], cwd=REPO,
                            text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "ready"
        end = time.monotonic() + 10
        while any(p.exists() for p in old_specs + [partial]) and time.monotonic() < end:
            time.sleep(0.02)
        assert not any(p.exists() for p in old_specs + [partial])  # tidied at start
        model = write_classifier(tmp_path / "m.onnx")
        spec = workdir / "jobs" / "now.json"
        spec.write_text(json.dumps(make_spec(model, "sleep", job_id="now", runtime_options={"latency_ms": 1})))
        late = touch(workdir / "cache" / "n.onnx.tmp-88", 2 * HOUR, time.time())  # a cut upload meanwhile
        proc.stdin.write(f"{spec}\n")
        proc.stdin.flush()
        events = [json.loads(proc.stdout.readline())]
        while events[-1]["event"] != "exit":
            events.append(json.loads(proc.stdout.readline()))
        assert events[-1]["code"] == 0
        end = time.monotonic() + 10
        while late.exists() and time.monotonic() < end:
            time.sleep(0.02)
        assert not late.exists() and spec.exists()  # tidied after the job; its own fresh spec kept
    finally:
        proc.stdin.close()
        assert proc.wait(30) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_the_limits_are_the_documented_ones() -> None:
    assert (tidy_mod.KEEP_SPECS, tidy_mod.SPEC_MAX_AGE_S, tidy_mod.MIN_SPEC_AGE_S, tidy_mod.PARTIAL_MAX_AGE_S) == (
        100, DAY, HOUR, HOUR)
