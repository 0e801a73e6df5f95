"""Planning: suite x inventory -> jobs, impossible pairs dropped with a reason."""

from __future__ import annotations

import pytest

from harness.config.inventory import Device
from harness.config.suite import Suite
from harness.errors import ConfigError
from harness.plan import make_plan, select_devices

DEVICES = (
    Device(name="local", kind="local", runtimes=("onnxruntime", "openvino")),
    Device(name="pi", kind="pi", host="pi", runtimes=("onnxruntime",), tags=("arm",)),
)


def suite(**kw: object) -> Suite:
    base = {"name": "s", "models": [{"builtin": "digits-cnn"}, {"builtin": "mobilenetv2-224"}],
            "variants": ["fp32", "int8-dynamic"], "runtimes": ["onnxruntime", "openvino"]}
    return Suite.model_validate({**base, **kw})


def test_every_offered_pair_is_planned_once() -> None:
    plan = make_plan(suite(), DEVICES)
    keys = {(j.model, j.variant, j.device, j.runtime) for j in plan.jobs}
    assert len(keys) == len(plan.jobs)
    assert ("digits-cnn", "fp32", "pi", "onnxruntime") in keys
    assert not any(j.device == "pi" and j.runtime == "openvino" for j in plan.jobs)
    assert "pi does not offer openvino" in plan.skipped
    assert len({j.key for j in plan.jobs}) == len(plan.jobs)


def test_settings_carry_measure_and_runtime_options() -> None:
    plan = make_plan(suite(runtime_options={"openvino": {"inference_precision": "f32"}}), DEVICES[:1])
    ov = next(j for j in plan.jobs if j.runtime == "openvino")
    ort = next(j for j in plan.jobs if j.runtime == "onnxruntime")
    assert ov.settings.runtime_options == {"inference_precision": "f32"} and ort.settings.runtime_options == {}
    assert ov.settings.measure.min_iters == 200 and ov.settings.measure.threads is None  # 'auto' on the wire


def test_device_selection() -> None:
    assert [d.name for d in select_devices(DEVICES, suite(devices={"tags": ["arm"]}))] == ["pi"]
    assert [d.name for d in select_devices(DEVICES, suite(), names=("local",))] == ["local"]
    assert [d.name for d in select_devices(DEVICES, suite(devices={"kinds": ["local"]}))] == ["local"]
    with pytest.raises(ConfigError, match="unknown device or pool 'gpu'"):
        select_devices(DEVICES, suite(), names=("gpu",))
    with pytest.raises(ConfigError, match="no device"):
        select_devices(DEVICES, suite(devices={"tags": ["none"]}))


def test_nothing_to_plan_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="plans no job"):
        make_plan(suite(runtimes=["openvino"]), DEVICES[1:])


POOL = (
    Device(name="orin-01", kind="jetson", host="10.0.0.1", runtimes=("onnxruntime",), pool="orin"),
    Device(name="orin-02", kind="jetson", host="10.0.0.2", runtimes=("onnxruntime", "openvino"), pool="orin"),
    Device(name="pi", kind="pi", host="10.0.0.3", runtimes=("onnxruntime",)),
)


def test_a_pool_is_one_target_whose_jobs_may_run_on_any_member_offering_the_runtime() -> None:
    plan = make_plan(suite(runtimes=["onnxruntime", "openvino"]), POOL)
    targets = {j.device for j in plan.jobs}
    assert targets == {"orin", "pi"}  # one job per pool, not per member
    assert plan.boards[("orin", "onnxruntime")] == ("orin-01", "orin-02")
    assert plan.boards[("orin", "openvino")] == ("orin-02",)
    assert plan.boards[("pi", "onnxruntime")] == ("pi",)
    assert "pi does not offer openvino" in plan.skipped


def test_a_pool_name_selects_its_members() -> None:
    assert [d.name for d in select_devices(POOL, suite(), names=("orin",))] == ["orin-01", "orin-02"]
    assert [d.name for d in select_devices(POOL, suite(devices={"names": ["orin"]}))] == ["orin-01", "orin-02"]


def test_the_canary_is_planned_first_and_last_on_every_board_of_a_pool_too() -> None:
    pool = (
        Device(name="pi-1", kind="pi", host="pi1", pool="pis", runtimes=("onnxruntime",)),
        Device(name="pi-2", kind="pi", host="pi2", pool="pis", runtimes=("onnxruntime",)),
        Device(name="ov", kind="x86", host="ov", runtimes=("openvino",)),
    )
    plan = make_plan(suite(canary=True, measure={"repeats": 5}), pool)
    canaries = [j for j in plan.jobs if j.model == "canary"]
    assert {(j.device, j.runtime, j.settings.canary) for j in canaries} == {
        (b, rt, when) for b, rt in (("pi-1", "onnxruntime"), ("pi-2", "onnxruntime"), ("ov", "openvino"))
        for when in ("first", "last")}
    assert all(j.settings.repeats == 1 for j in canaries)  # first + last are already two processes
    assert plan.boards[("pi-1", "onnxruntime")] == ("pi-1",) and plan.boards[("pis", "onnxruntime")] == ("pi-1", "pi-2")
    assert not any(j.model == "canary" for j in make_plan(suite(), pool).jobs)


def test_a_canary_every_n_windows_gets_one_window_per_n_of_its_boards_share() -> None:
    pool = (
        Device(name="pi-1", kind="pi", host="pi1", pool="pis", runtimes=("onnxruntime",)),
        Device(name="pi-2", kind="pi", host="pi2", pool="pis", runtimes=("onnxruntime",)),
        Device(name="ov", kind="x86", host="ov", runtimes=("openvino",)),
    )
    plan = make_plan(suite(canary={"every": 1}, measure={"repeats": 3}), pool)
    between = {j.device: j for j in plan.jobs if j.settings.canary == "between"}
    # 4 jobs x 3 repeats on each target; a pi runs half of the pool's 12 windows: 6, so 5 gaps
    assert {d: (j.settings.between, j.settings.repeats) for d, j in between.items()} == {
        "pi-1": ("pis", 5), "pi-2": ("pis", 5), "ov": ("ov", 11)}
    every2 = make_plan(suite(canary={"every": 2}), pool)  # one window per job: 2 per pi, 4 on ov
    assert {j.device: j.settings.repeats for j in every2.jobs if j.settings.canary == "between"} \
        == {"ov": 1}
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        suite(canary={"every": 0})


def test_an_interleaved_canary_rides_with_every_job_its_runtime_can_read() -> None:
    devices = (*DEVICES, Device(name="tiny", kind="pi", host="t", runtimes=("litert",)))
    plan = make_plan(suite(canary={"interleaved": True, "block_s": 0.5}, runtimes=["onnxruntime", "openvino", "litert"],
                           variants=["fp32", "tflite-fp32"]), devices)
    body = [j for j in plan.jobs if j.model != "canary"]
    assert {j.settings.canary_block_s for j in body if j.runtime != "litert"} == {0.5}
    assert any(j.runtime == "litert" for j in body)
    assert all(j.settings.canary_block_s is None for j in body if j.runtime == "litert")
    assert "the interleaved canary on tiny: litert cannot read its onnx file" in plan.skipped
    canaries = [j for j in plan.jobs if j.model == "canary"]  # still first and last on each board: the drift check
    assert {j.settings.canary for j in canaries} == {"first", "last"} and not any(
        j.settings.canary_block_s is not None for j in canaries)
    assert not any(j.settings.canary_block_s is not None for j in make_plan(suite(canary={"every": 2}), DEVICES).jobs)
    with pytest.raises(ValueError, match="set 'every: N', 'interleaved: true' or both"):
        suite(canary={"block_s": 0.3})


def test_the_canary_name_is_reserved() -> None:
    with pytest.raises(ValueError, match="reserved for the board canary"):
        suite(models=[{"builtin": "digits-cnn", "name": "canary"}])


def test_a_runtime_gets_only_the_file_formats_it_reads() -> None:
    """A Pi row compares ONNX Runtime and LiteRT on one model: fp32/int8-dynamic (ONNX) go to
    ONNX Runtime, the tflite variants to LiteRT, never crossed."""
    pi = (Device(name="pi", kind="pi", host="pi", runtimes=("onnxruntime", "litert")),)
    plan = make_plan(suite(variants=["fp32", "int8-dynamic", "tflite-fp32", "tflite-int8"],
                           runtimes=["onnxruntime", "litert"]), pi)
    pairs = {(j.variant, j.runtime) for j in plan.jobs}
    assert pairs == {("fp32", "onnxruntime"), ("int8-dynamic", "onnxruntime"), ("tflite-fp32", "litert"),
                     ("tflite-int8", "litert")}
    assert "fp32: litert cannot read its onnx file (it reads tflite)" in plan.skipped
    assert "tflite-int8: onnxruntime cannot read its tflite file (it reads onnx)" in plan.skipped


def test_a_runtime_gets_only_the_precisions_it_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bf16 model goes to OpenVINO (f32, f16, bf16, int8), not to ONNX Runtime (no bf16):
    the pair is dropped with a note, like a file format the runtime cannot read."""
    from harness.variants import RECIPES, Preset
    from harness.variants.fp16 import Fp16

    class Bf16(Fp16):
        name = "bf16"
        precision = "bf16"

    monkeypatch.setitem(RECIPES, "bf16", Preset(Bf16))
    plan = make_plan(suite(variants=["fp32", "prune-l1 > bf16"]), DEVICES)
    pairs = {(j.variant, j.device, j.runtime) for j in plan.jobs}
    assert ("prune-l1 > bf16", "local", "openvino") in pairs
    assert not any(v == "prune-l1 > bf16" and r == "onnxruntime" for v, _, r in pairs)
    assert {("fp32", "local", "onnxruntime"), ("fp32", "pi", "onnxruntime"), ("fp32", "local", "openvino")} <= pairs
    assert "prune-l1 > bf16: onnxruntime cannot execute its bf16 precision (it runs f16, f32, int8)" in plan.skipped


def test_every_shipped_recipe_precision_runs_where_its_format_is_read() -> None:
    """No pair that runs today is dropped for its precision: every runtime executes what the
    built-in recipes make (fp32, fp16, int8), on every format it reads."""
    from devices.agent.runtimes import RUNTIMES
    from harness.variants import RECIPES

    every = (Device(name="all", kind="local", runtimes=tuple(RUNTIMES)),)
    plan = make_plan(suite(models=[{"builtin": "digits-cnn"}], variants=sorted(RECIPES),
                           runtimes=sorted(RUNTIMES)), every)
    assert not [note for note in plan.skipped if "precision" in note]
    assert {j.runtime for j in plan.jobs} == set(RUNTIMES)
