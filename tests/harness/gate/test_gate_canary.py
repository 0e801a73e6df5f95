"""The board canary as a control variate: runs written through the real store, each run's
board speed a random shift that every window of the run feels (the canary's too)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

import harness.store
from gate_testlib import CONFIGS, add_run
from harness.config.gate import DEFAULT
from harness.gate.canary import MIN_RUNS, CanaryWindows
from harness.gate.evaluate import evaluate

BOARDS = {"orin": 1.0, "pi": 1.0}


@pytest.fixture
def store(tmp_path: Path):  # noqa: ANN201
    with harness.store.open(tmp_path / "h.db") as st:
        yield st


def p50(result, config: tuple):  # noqa: ANN001, ANN201
    return next(v for v in result.verdicts if tuple(v.config.values()) == config and v.metric == "latency_p50")


def history(store, rng: np.random.Generator, n: int = 12, **kw: object) -> list[str]:  # noqa: ANN001
    return [add_run(store, rng, canary=BOARDS, **kw) for _ in range(n)]


def test_a_result_is_compared_with_the_canary_windows_next_to_it(store) -> None:  # noqa: ANN001
    run = add_run(store, np.random.default_rng(0), canary=BOARDS, board_noise=0.05)
    reps = store.repeats(run=run).sort_values("started")
    windows = CanaryWindows(store, [run])
    for board in BOARDS:
        mine = reps[reps.board == board].reset_index(drop=True)
        assert list(mine.model) == ["canary", CONFIGS[0][0] if board == "orin" else CONFIGS[2][0], "canary",
                                    CONFIGS[1][0] if board == "orin" else CONFIGS[3][0], "canary"]
        for i in (1, 3):  # each configuration sits between two canary windows
            y, c = windows.pair(int(mine.job_id[i]), 50)
            assert y == pytest.approx(math.log(mine.p50_ms[i]))
            assert c == pytest.approx((math.log(mine.p50_ms[i - 1]) + math.log(mine.p50_ms[i + 1])) / 2)


def test_the_canary_takes_the_boards_speed_out_and_catches_what_it_hid(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    runs = history(store, rng, board_noise=0.05)
    # tonight orin runs 15% slower for everything: the canary shows it too; CONFIGS[1] is 10% slower on top
    cand = add_run(store, rng, canary={"orin": 1.15, "pi": 1.0},
                   slow={CONFIGS[0]: 1.15, CONFIGS[1]: 1.15 * 1.10})
    result = evaluate(store, cand, runs[-5:], DEFAULT, runs)
    drift, real = p50(result, CONFIGS[0]), p50(result, CONFIGS[1])
    assert drift.verdict == "board-drift" and drift.raw_ratio > 1.10 and abs(drift.ratio - 1) < 0.04
    assert real.verdict == "regression" and 1.06 < real.ratio < 1.14 and "vs the board canary" in real.note
    assert {p50(result, c).verdict for c in CONFIGS[2:]} == {"pass"}


def test_a_ten_percent_slowdown_on_a_noisy_board_is_caught_only_with_the_canary(tmp_path: Path) -> None:
    found = {}
    for with_canary in (True, False):
        hits = 0
        with harness.store.open(tmp_path / f"{with_canary}.db") as st:
            for seed in range(8):
                rng = np.random.default_rng(100 + seed)
                boards = BOARDS if with_canary else None
                runs = [add_run(st, rng, tag=f"n{seed}", canary=boards, board_noise=0.04) for _ in range(MIN_RUNS + 2)]
                cand = add_run(st, rng, tag=f"n{seed}", canary=boards, board_noise=0.04, slow={CONFIGS[0]: 1.10})
                hits += p50(evaluate(st, cand, runs[-5:], DEFAULT, runs), CONFIGS[0]).verdict == "regression"
        found[with_canary] = hits
    assert found[True] == 8  # the board's 4% run-to-run swings are taken out
    assert found[False] <= 5  # without it about half are inconclusive


def test_a_model_the_board_speed_does_not_touch_keeps_its_own_noise(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(2)
    runs = history(store, rng, board_noise=0.05, deaf=(CONFIGS[3],))
    cand = add_run(store, rng, canary=BOARDS, board_noise=0.05, deaf=(CONFIGS[3],))
    result = evaluate(store, cand, runs[-5:], DEFAULT, runs)
    follows, deaf = p50(result, CONFIGS[2]), p50(result, CONFIGS[3])
    betas = [float(re.search(r"beta ([0-9.]+)", v.note).group(1)) for v in (follows, deaf)]
    assert betas[0] > 0.7 and betas[1] < 0.3
    assert {follows.verdict, deaf.verdict} == {"pass"}


def test_too_short_a_history_is_compared_without_the_canary(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    runs = history(store, rng, n=MIN_RUNS - 1, board_noise=0.05)
    cand = add_run(store, rng, canary=BOARDS, board_noise=0.05)
    v = p50(evaluate(store, cand, runs[-5:], DEFAULT, runs), CONFIGS[0])
    assert v.raw_ratio is None and "canary" not in v.note


def test_an_unstable_candidate_noisier_than_its_history_must_clear_the_limit_with_its_interval(store) -> None:  # noqa: ANN001
    mark = "cv 4.1% > 2.5% (trtexec)"
    rng = np.random.default_rng(4)
    runs = history(store, rng, board_noise=0.04, run_noise=0.02, unstable={CONFIGS[0]: mark})
    slow = {CONFIGS[0]: 1.09, CONFIGS[2]: 1.09}
    cand = add_run(store, rng, canary=BOARDS, board_noise=0.04, run_noise=0.0, slow=slow,
                   unstable={CONFIGS[0]: mark, CONFIGS[2]: mark}, cv={CONFIGS[2]: 0.5})
    result = evaluate(store, cand, runs[-5:], DEFAULT, runs)
    usual, unusual = p50(result, CONFIGS[0]), p50(result, CONFIGS[2])
    assert usual.ci[0] < 1.05 < usual.ratio and unusual.ci[0] < 1.05 < unusual.ratio
    assert usual.verdict == "regression" and usual.unstable is None  # its history was as unstable
    assert unusual.verdict == "inconclusive" and mark in unusual.note  # far noisier than its history


def test_the_slopes_uncertainty_widens_the_interval_as_far_as_the_board_moved(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    runs = history(store, rng, board_noise=0.05)
    usual = add_run(store, rng, canary=BOARDS)
    moved = add_run(store, rng, canary={"orin": 1.10, "pi": 1.0}, slow={CONFIGS[0]: 1.10})  # ~2 sd: within the history
    width = {}
    for name, cand in (("usual", usual), ("moved", moved)):
        v = p50(evaluate(store, cand, runs[-5:], DEFAULT, runs), CONFIGS[0])
        assert v.verdict in ("pass", "board-drift") and "extrapolation" not in (v.unstable or "")
        width[name] = math.log(v.ci[1] / v.ci[0])
    # the same history, baselines and noise: without the slope's error the two widths would be equal
    assert width["moved"] > 1.02 * width["usual"]


def test_a_board_far_from_anything_its_history_saw_must_clear_the_limit_with_its_interval(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(6)
    runs = history(store, rng, board_noise=0.02)
    # orin is 25% slow tonight, many times its usual spread; CONFIGS[0] follows it and is 8% slower on top
    cand = add_run(store, rng, canary={"orin": 1.25, "pi": 1.0}, slow={CONFIGS[0]: 1.25 * 1.08})
    result = evaluate(store, cand, runs[-5:], DEFAULT, runs)
    far, home = p50(result, CONFIGS[0]), p50(result, CONFIGS[2])
    assert "correction is an extrapolation" in far.unstable and "+25" in far.unstable
    assert far.ci[0] < 1.05 < far.ratio and far.verdict == "inconclusive" and "whole interval" in far.note
    assert home.unstable is None and home.verdict == "pass"  # pi's canary is where it always was


def test_a_jobs_own_interleaved_canary_is_its_covariate(store) -> None:  # noqa: ANN001
    run = add_run(store, np.random.default_rng(5), canary=BOARDS, board_noise=0.05, interleaved=True, repeats=3)
    reps = store.repeats(run=run)
    windows = CanaryWindows(store, [run])
    for job_id, mine in reps[reps.model != "canary"].groupby("job_id"):
        y, c = windows.pair(int(job_id), 99)
        assert windows.interleaved(int(job_id), 99) and len(mine) == 3
        assert y == pytest.approx(np.log(mine.p99_ms).mean()) and c == pytest.approx(np.log(mine.canary_p99_ms).mean())
    first = reps[reps.model == "canary"].job_id.iloc[0]
    assert not windows.interleaved(int(first), 50)  # the canary's own windows carry none


def test_the_interleaved_canary_sees_the_slow_process_the_windows_next_to_it_miss(tmp_path: Path) -> None:
    """Each window lands in a process 6% slower or faster (sd) that only the canary inside it shares:
    relative to the windows next to it a 10% slowdown hides in that noise, relative to its own
    interleaved canary it is caught, and the A/A comparison stays quiet."""
    found: dict[bool, list[str]] = {}
    for inside in (True, False):
        found[inside] = []
        with harness.store.open(tmp_path / f"{inside}.db") as st:
            for seed in range(6):
                rng = np.random.default_rng(300 + seed)
                kw = dict(tag=f"n{seed}", canary=BOARDS, board_noise=0.03, process_noise=0.06, interleaved=inside)
                runs = [add_run(st, rng, **kw) for _ in range(MIN_RUNS + 4)]  # type: ignore[arg-type]
                cand = add_run(st, rng, slow={CONFIGS[0]: 1.10}, **kw)  # type: ignore[arg-type]
                result = evaluate(st, cand, runs[-5:], DEFAULT, runs)
                found[inside].append(p50(result, CONFIGS[0]).verdict)
                assert "regression" not in {p50(result, c).verdict for c in CONFIGS[1:]}
                note = p50(result, CONFIGS[0]).note
                assert ("vs its interleaved canary" in note) is inside and ("vs the board canary" in note) is not inside
    assert found[True] == ["regression"] * 6
    assert found[False].count("regression") <= 3, found[False]


def test_a_history_of_the_other_kind_is_not_mixed_in(store) -> None:  # noqa: ANN001
    rng = np.random.default_rng(7)
    runs = history(store, rng, board_noise=0.05)  # canary windows next to the jobs
    cand = add_run(store, rng, canary=BOARDS, board_noise=0.05, interleaved=True)
    result = evaluate(store, cand, runs[-5:], DEFAULT, runs)
    assert all("canary" not in p50(result, c).note for c in CONFIGS)  # too few of its kind: the raw comparison
    more = history(store, rng, board_noise=0.05, interleaved=True)
    result = evaluate(store, cand, more[-5:], DEFAULT, runs + more)
    assert all("vs its interleaved canary" in p50(result, c).note and f"{len(more)} runs" in p50(result, c).note
               for c in CONFIGS)


def test_runs_stored_without_repeat_rows_have_no_windows(store) -> None:  # noqa: ANN001
    """A store holding results but no timed windows (written by hand, or by an older harness):
    no canary pairs, no error."""
    from devices.agent.spec import MeasureSettings
    from harness.records import Job, JobResult, JobSettings

    run = store.create_run(suite="s", config={})
    job = Job("m", "fp32", "orin", "onnxruntime", JobSettings(MeasureSettings(min_iters=10)))
    jid = store.add_jobs(run, [job])[job.key]
    store.record(jid, JobResult("ok", metrics={"p50_ms": 1.0, "n_iters": 10}))
    windows = CanaryWindows(store, [run])
    assert windows.pair(jid, 50) is None and not windows.interleaved(jid, 50)
