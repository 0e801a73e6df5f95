"""Scenarios (``devices/agent/scenarios/``) on real runtimes: the sleep runtime, where the math is
known (each request sleeps a fixed time, so N in flight give N / latency per second), and ONNX
Runtime and OpenVINO on the agent tests' small classifier. The spec's operating-point keys round
trip and bad ones are refused naming the key."""

from __future__ import annotations

import io
import json
from pathlib import Path

import agent_testlib as lib
import numpy as np
import pytest

from devices.agent.cli import main
from devices.agent.errors import ProtocolError
from devices.agent.measurespec import LATER_KEYS, SCENARIO_PROTOCOL, single_stream
from devices.agent.scenarios import SCENARIOS
from devices.agent.scenarios.paced import MAX_LATE, arrival_offsets
from devices.agent.scenarios.search import choose, search
from devices.agent.spec import Artifact, JobSpec, MeasureSettings, ModelInput, parse_spec, spec_to_json

SLEEP_MS = 20.0  # time.sleep (not the spin below 2 ms): it releases the GIL, so requests really overlap
FAST = {"warmup_iters": 2, "warmup_s": 0.05, "min_iters": 20, "min_s": 0.4, "quiet": None, "timeout_s": 60}


def measure(tmp_path: Path, runtime: str = "sleep", artifact: Path | None = None, shape: tuple = (1, 1, 8, 8),
            options: dict | None = None, **ms: object) -> dict:
    """The result event of one ``measure`` in this process (it must succeed)."""
    if artifact is None:
        artifact = tmp_path / "model.bin"
        artifact.write_bytes(b"x")
        options = {"latency_ms": SLEEP_MS} if options is None else options
    spec = lib.make_spec(artifact, runtime=runtime, protocol=SCENARIO_PROTOCOL, measure=dict(FAST, **ms),
                         runtime_options=options or {})
    spec["input"]["shape"] = list(shape)
    out = io.StringIO()
    code = main(["measure", str(lib.write_spec(tmp_path, spec))], out=out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0, events[-1]
    return lib.by_event(events, "result")[-1]


# -- the sleep runtime: known math ------------------------------------------------------------


def test_offline_keeps_n_requests_in_flight(tmp_path: Path) -> None:
    single = measure(tmp_path)
    two = measure(tmp_path, scenario="offline", inflight=2)
    four = measure(tmp_path, scenario="offline", inflight=4, shape=(2, 1, 8, 8))
    assert single["scenario"] == {"name": "single-stream", "batch": 1, "inflight": 1, "resolution": "8x8"}
    ideal = 1e3 / SLEEP_MS
    assert single["latency"]["throughput_ips"] == pytest.approx(ideal, rel=0.1)
    assert two["latency"]["throughput_ips"] > 0.9 * 2 * single["latency"]["throughput_ips"]
    assert two["latency"]["throughput_ips"] < 2 * ideal * 1.05  # no more than two sleeps at a time
    # Batch 2, four in flight: eight inferences per sleep, counted with the batch.
    assert four["latency"]["throughput_ips"] == pytest.approx(8 * ideal, rel=0.12)
    assert four["scenario"]["batch"] == 2 and four["scenario"]["inflight"] == 4
    assert four["scenario"]["pool"] == {"kind": "threads", "requests": 4}
    # Each request's own latency under that load is still one sleep: nothing queues in offline.
    assert two["latency"]["p50_ms"] == pytest.approx(SLEEP_MS, rel=0.15)
    assert two["latency"]["n"] >= FAST["min_iters"] and two["stop"]["reason"] == "min_reached"


def test_offline_without_inflight_takes_the_runtimes_number(tmp_path: Path) -> None:
    result = measure(tmp_path, scenario="offline")
    assert result["scenario"]["inflight"] == 2  # the sleep runtime's (Runtime.optimal_inflight)


def test_multi_stream_times_whole_queries(tmp_path: Path) -> None:
    wide = measure(tmp_path, scenario="multi-stream", samples_per_query=4, inflight=4)
    narrow = measure(tmp_path, scenario="multi-stream", samples_per_query=4, inflight=2)
    # Four parallel samples on four requests take one sleep; on two, two sleeps.
    assert wide["latency"]["p50_ms"] == pytest.approx(SLEEP_MS, rel=0.2)
    assert narrow["latency"]["p50_ms"] == pytest.approx(2 * SLEEP_MS, rel=0.2)
    assert wide["latency"]["throughput_ips"] == pytest.approx(4 * 1e3 / SLEEP_MS, rel=0.2)
    assert wide["scenario"]["samples_per_query"] == 4 and wide["latency"]["n"] >= FAST["min_iters"]


def test_paced_at_a_rate_it_keeps_and_one_it_cannot(tmp_path: Path) -> None:
    kept = measure(tmp_path, scenario="paced", rate_hz=25, inflight=1)
    s = kept["scenario"]
    assert s["kept_up"] is True and s["late_fraction"] <= MAX_LATE and s["issued"] == s["scheduled"] == 20
    assert s["achieved_hz"] == pytest.approx(25, rel=0.1)
    assert kept["latency"]["p99_ms"] < 2 * SLEEP_MS  # nothing waited: the latency is the sleep
    assert kept["unstable"] is None
    # 200 requests per second on one request of 20 ms: 50 per second at most; it falls behind.
    lost = measure(tmp_path, scenario="paced", rate_hz=200, inflight=1, min_s=0.5)
    s = lost["scenario"]
    assert s["kept_up"] is False and s["late_fraction"] > 0.5
    assert s["achieved_hz"] == pytest.approx(1e3 / SLEEP_MS, rel=0.15)
    # Latency counts from the scheduled arrival: the queue's wait is in it.
    assert lost["latency"]["p99_ms"] > 10 * SLEEP_MS


def test_poisson_arrivals_are_seeded() -> None:
    a, b = arrival_offsets(2000, 50.0, "poisson", 7), arrival_offsets(2000, 50.0, "poisson", 7)
    assert a == b != arrival_offsets(2000, 50.0, "poisson", 8) and a[0] == 0
    gaps = np.diff(a) / 1e9
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.08) and gaps.std() == pytest.approx(1 / 50, rel=0.15)
    assert arrival_offsets(3, 10.0, "uniform", 0) == [0, 100000000, 200000000]


def test_the_search_finds_the_most_throughput_under_the_bound(tmp_path: Path) -> None:
    # The sleep runtime never saturates and its p99 stays one sleep: the bound holds up to the ceiling.
    result = measure(tmp_path, scenario="offline", p99_bound_ms=5 * SLEEP_MS, inflight=4)
    found = result["scenario"]["search"]
    assert [w["inflight"] for w in found["windows"]] == [1, 2, 4] and found["count"] == 3
    assert found["chosen"] == 4 == result["scenario"]["inflight"] and found["bound_met"] is True
    assert result["latency"]["throughput_ips"] == pytest.approx(4 * 1e3 / SLEEP_MS, rel=0.12)
    # A bound below one sleep: even one request breaks it; the choice is 1, marked.
    tight = measure(tmp_path, scenario="offline", p99_bound_ms=SLEEP_MS / 2, inflight=8)
    assert tight["scenario"]["search"]["bound_met"] is False and tight["scenario"]["inflight"] == 1
    assert tight["scenario"]["search"]["count"] == 1


def saturating(n: int) -> tuple[float, float]:
    """A board with 6 cores of 10 ms work: throughput saturates at 6 in flight, p99 rises with queueing."""
    return min(n, 6) * 100.0, 10.0 * max(1.0, n / 6) + n


@pytest.mark.parametrize("bound", [12.0, 16.0, 30.0, 200.0])
def test_the_search_agrees_with_the_full_grid_in_fewer_windows(bound: float) -> None:
    calls: list[int] = []

    def at(n: int) -> tuple[float, float]:
        calls.append(n)
        return saturating(n)

    chosen, met, windows = search(at, bound, 64)
    grid = {n: saturating(n) for n in range(1, 65)}
    assert chosen == choose(grid, bound) and met is True
    assert len(calls) == len(windows) == len(set(calls)) <= 2 * 6 < len(grid)  # about 2 log2(cap) windows


# -- ONNX Runtime and OpenVINO --------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lib.write_classifier(tmp_path_factory.mktemp("scenarios") / "model.onnx")


RUNTIMES = [("onnxruntime", {}, "threads"), ("openvino", {"inference_precision": "f32"}, "async-infer-queue")]


@pytest.mark.parametrize("runtime,options,pool", RUNTIMES, ids=[r[0] for r in RUNTIMES])
def test_every_scenario_on_a_real_runtime(tmp_path: Path, classifier: Path, runtime: str, options: dict,
                                          pool: str) -> None:
    run = lambda **ms: measure(tmp_path, runtime, classifier, (4, 1, 8, 8), options, threads=None, **ms)  # noqa: E731
    offline = run(scenario="offline", inflight=2)
    assert offline["scenario"]["pool"]["kind"] == pool and offline["scenario"]["inflight"] == 2
    lat = offline["latency"]
    assert lat["n"] >= FAST["min_iters"] and lat["throughput_ips"] == pytest.approx(4 * lat["n"] / lat["window_s"])
    assert len(offline["samples_ns"]) == lat["n"] and min(offline["samples_ns"]) > 0
    multi = run(scenario="multi-stream", samples_per_query=4)
    assert multi["scenario"]["inflight"] <= 4 and multi["latency"]["n"] >= FAST["min_iters"]
    assert multi["latency"]["throughput_ips"] == pytest.approx(16 * multi["latency"]["n"] / multi["latency"]["window_s"])
    paced = run(scenario="paced", rate_hz=100, arrivals="poisson")  # a 64 x 10 Gemm: far under 10 ms
    assert paced["scenario"]["kept_up"] is True and paced["scenario"]["arrivals"] == "poisson"
    found = run(scenario="offline", p99_bound_ms=1000.0, inflight=4)["scenario"]["search"]
    assert found["count"] == len(found["windows"]) >= 2 and 1 <= found["chosen"] <= 4 and found["bound_met"]


def test_openvino_compiles_for_throughput_with_requests_in_flight(tmp_path: Path, classifier: Path) -> None:
    result = measure(tmp_path, "openvino", classifier, (4, 1, 8, 8), {"inference_precision": "f32"}, threads=None,
                     scenario="offline", inflight=2)
    assert result["runtime"]["options"]["performance_hint"] == "THROUGHPUT"
    single = measure(tmp_path, "openvino", classifier, (4, 1, 8, 8), {"inference_precision": "f32"}, threads=None)
    assert single["runtime"]["options"]["performance_hint"] == "LATENCY"


def test_onnxruntime_splits_the_threads_over_the_requests(tmp_path: Path, classifier: Path) -> None:
    result = measure(tmp_path, "onnxruntime", classifier, (4, 1, 8, 8), {}, threads=4, scenario="offline", inflight=2)
    assert result["runtime"]["options"]["intra_op_num_threads"] == 2 and result["threads"] == 4
    single = measure(tmp_path, "onnxruntime", classifier, (4, 1, 8, 8), {}, threads=4)
    assert single["runtime"]["options"]["intra_op_num_threads"] == 4


# -- the spec --------------------------------------------------------------------------------


def spec(**measure: object) -> JobSpec:
    return JobSpec("j", "sleep", Artifact("/m.onnx"), ModelInput((1, 3, 8, 8)), measure=MeasureSettings(**measure))


def test_a_single_stream_spec_is_what_older_agents_read() -> None:
    raw = spec_to_json(spec())
    assert raw["protocol"] == 1 and not set(raw["measure"]) & set(LATER_KEYS)
    assert parse_spec(json.loads(json.dumps(raw))) == spec()


@pytest.mark.parametrize("measure", [
    {"scenario": "offline", "inflight": 4}, {"scenario": "offline", "p99_bound_ms": 50.0},
    {"scenario": "multi-stream", "samples_per_query": 16}, {"scenario": "paced", "rate_hz": 30.0, "arrivals": "poisson"},
])  # fmt: skip
def test_operating_points_round_trip_at_protocol_5(measure: dict) -> None:
    raw = json.loads(json.dumps(spec_to_json(spec(**measure))))
    assert raw["protocol"] == SCENARIO_PROTOCOL and raw["measure"]["scenario"] == measure["scenario"]
    assert parse_spec(raw) == spec(**measure)
    assert single_stream(parse_spec(raw).measure) == MeasureSettings()


@pytest.mark.parametrize("measure,key", [
    ({"scenario": "bursty"}, "measure.scenario"),
    ({"scenario": "paced"}, "measure.rate_hz"),
    ({"scenario": "offline", "rate_hz": 30}, "measure.rate_hz"),
    ({"scenario": "single-stream", "inflight": 2}, "measure.inflight"),
    ({"scenario": "offline", "inflight": 0}, "measure.inflight"),
    ({"scenario": "paced", "rate_hz": 30, "arrivals": "bursty"}, "measure.arrivals"),
    ({"scenario": "paced", "rate_hz": -1}, "measure.rate_hz"),
    ({"scenario": "offline", "p99_bound_ms": 0}, "measure.p99_bound_ms"),
    ({"scenario": "offline", "inflight": "two"}, "measure.inflight"),
    ({"scenario": "offline", "target": {"percentile": 99}}, "measure.target"),
    ({"scenario": "multi-stream", "samples_per_query": 0}, "measure.samples_per_query"),
])  # fmt: skip
def test_bad_operating_points_are_refused_naming_the_key(measure: dict, key: str) -> None:
    raw = spec_to_json(spec())
    raw["protocol"] = SCENARIO_PROTOCOL
    raw["measure"].update(measure)
    with pytest.raises(ProtocolError, match=key.replace(".", r"\.")):
        parse_spec(raw)


def test_the_interleaved_canary_stays_single_stream(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"x")
    raw = lib.make_spec(model, runtime="sleep", protocol=SCENARIO_PROTOCOL, measure=dict(FAST, scenario="offline"),
                        canary={"runtime": "sleep", "artifact": {"path": str(model)}, "input": {"shape": [1, 3, 8, 8],
                                "dtype": "float32"}, "runtime_options": {}, "block_s": 0.1})  # fmt: skip
    out = io.StringIO()
    assert main(["measure", str(lib.write_spec(tmp_path, raw))], out=out) == 1
    error = lib.by_event([json.loads(line) for line in out.getvalue().splitlines()], "error")[-1]
    assert error["kind"] == "ProtocolError" and "spec key canary" in error["message"]


def test_every_scenario_is_registered_under_its_name() -> None:
    assert list(SCENARIOS) == ["single-stream", "offline", "multi-stream", "paced"]
    assert all(cls.name == name for name, cls in SCENARIOS.items())
    assert {k for cls in SCENARIOS.values() for k in cls.keys} | {"scenario"} == set(LATER_KEYS)


def test_simulated_tensorrt_runs_one_engine_instance_per_request(tmp_path: Path, classifier: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import test_agent_tensorrt as fake_trt

    from devices.agent.runtimes import cuda_mem

    monkeypatch.setitem(sys.modules, "tensorrt", fake_trt.fake_tensorrt())
    monkeypatch.setattr(cuda_mem, "load_backend", lambda device=0: fake_trt.FakeCuda(device))
    result = measure(tmp_path, "tensorrt", classifier, (4, 1, 8, 8), {"engine_cache": str(tmp_path / "engines")},
                     scenario="offline", inflight=3)
    assert result["scenario"]["pool"] == {"kind": "threads", "requests": 3} and result["scenario"]["inflight"] == 3
    assert result["latency"]["n"] >= FAST["min_iters"] and result["latency"]["throughput_ips"] > 0
    assert len(list((tmp_path / "engines").rglob("*.engine"))) == 1  # the clones loaded the one cached engine
