"""A job's identity (``Job.key``) and stored settings keep the shape earlier stores hold.

The keys below were computed by the harness before a job's settings were typed (when
they were a free dict); a run stored then must still resume: its jobs are found by key.
"""

from __future__ import annotations

import json

from harness.config.inventory import Device
from harness.config.suite import Suite
from harness.hashing import canonical_json
from harness.plan import make_plan
from harness.records import JobSettings

LOCAL = (Device(name="local", kind="local", runtimes=("onnxruntime", "openvino")),)
TUNED = {
    "name": "keys", "models": [{"builtin": "digits-cnn"}], "variants": ["fp32", "int8-dynamic"],
    "runtimes": ["onnxruntime", "openvino"],
    "measure": {"warmup_iters": 3, "min_iters": 50, "min_s": 1, "timeout_s": 300, "threads": 2, "repeats": 3,
                "order": "interleaved", "target": {"percentile": 90}, "quiet": None},
    "runtime_options": {"openvino": {"inference_precision": "f32"}},
    "canary": {"every": 2, "interleaved": True},
}  # fmt: skip
DEFAULTS = {"name": "defaults", "models": [{"builtin": "digits-cnn"}], "variants": ["fp32"],
            "runtimes": ["onnxruntime"], "canary": True}
GOLDEN = {
    "keys": [
        ("digits-cnn [fp32] on local/onnxruntime", "8ad4d3992c1c305c"),
        ("digits-cnn [int8-dynamic] on local/onnxruntime", "0540438aba967cae"),
        ("digits-cnn [fp32] on local/openvino", "52ed4b93855c7c6a"),
        ("digits-cnn [int8-dynamic] on local/openvino", "f3b26af0a98aa91f"),
        ("canary [fp32] on local/onnxruntime", "116f461511ff18c2"),
        ("canary [fp32] on local/onnxruntime", "4efc164c4b47fe02"),
        ("canary [fp32] on local/onnxruntime", "0fb061be1c2d4327"),
    ],
    "defaults": [
        ("digits-cnn [fp32] on local/onnxruntime", "1fcaf1818a58af3f"),
        ("canary [fp32] on local/onnxruntime", "a046b91377329a7f"),
        ("canary [fp32] on local/onnxruntime", "e97c51111da80b04"),
    ],
}


def test_job_keys_are_those_of_earlier_stores() -> None:
    for raw in (TUNED, DEFAULTS):
        plan = make_plan(Suite.model_validate(raw), LOCAL)
        assert [(j.label(), j.key) for j in plan.jobs] == GOLDEN[raw["name"]]


def test_stored_settings_read_back_to_the_same_identity() -> None:
    for raw in (TUNED, DEFAULTS):
        for job in make_plan(Suite.model_validate(raw), LOCAL).jobs:
            stored = json.loads(canonical_json(job.settings.identity()))
            back = JobSettings.from_identity(stored)
            assert back == job.settings and canonical_json(back.identity()) == canonical_json(stored)


def test_an_earlier_stores_settings_row_reads_as_typed_settings() -> None:
    """A row as the free-dict harness wrote it (its ``settings_json``), verbatim."""
    row = ('{"canary":"between","between":"local","measure":{"max_iters":null,"min_iters":50,"min_s":1.0,'
           '"order":"interleaved","quiet":null,"repeats":2,"seed":0,"target":{"confidence":0.95,"percentile":90.0,'
           '"rel_error":0.02},"threads":2,"timeout_s":300.0,"warmup_iters":3,"warmup_s":1.0},"runtime_options":{}}')
    s = JobSettings.from_identity(json.loads(row))
    assert (s.canary, s.between, s.repeats, s.order) == ("between", "local", 2, "interleaved")
    assert (s.measure.min_iters, s.measure.threads, s.measure.quiet, s.measure.target.percentile) == (50, 2, None, 90.0)
    assert canonical_json(s.identity()) == canonical_json(json.loads(row))
