"""Synthetic run data for the report tests: 2 devices x 2 models x 3 variants x 2 runtimes.

Imported by conftest.py and by the tests that need the constants.

Built to look like the store's output: object columns with ``None`` for missing values,
one failed job (all metrics None, an error with a traceback), one model without an
eval set (accuracy None everywhere), one board without a power sensor (rpi5: energy and
power None everywhere), two throttled jobs and one whose throttling is unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reports.sections.base import RESULT_COLUMNS

DEVICES = ("jetson-orin-nano", "rpi5")
MODELS = ("resnet18", "yolo-det")  # yolo-det has no eval set
VARIANTS = ("fp32", "fp16", "int8-ptq")
RUNTIMES = ("onnxruntime", "openvino")
FAILED_JOB = ("rpi5", "resnet18", "int8-ptq", "openvino")
NO_SENSOR_DEVICE = "rpi5"
#: Average power per runtime on the board with a sensor (W); energy = p50 x power.
POWER_W = {"onnxruntime": 6.0, "openvino": 4.5}
THROTTLED_JOBS = (
    ("jetson-orin-nano", "resnet18", "fp32", "onnxruntime"),
    ("rpi5", "yolo-det", "fp16", "openvino"),
)
THROTTLE_UNKNOWN_JOB = ("rpi5", "resnet18", "fp32", "onnxruntime")
FAILED_ERROR = (
    "ArtifactIncompatible: openvino cannot compile int8-ptq QDQ model\n"
    "Traceback (most recent call last):\n  File agent.py, line 12\n"
    "No suitable implementations"
)
RUN_INFO: dict[str, Any] = {
    "id": "run-20261123-0001",
    "tag": "nightly",
    "suite": "vision-small",
    "started": "2026-11-23T01:00:00",
    "finished": "2026-11-23T01:42:10",
    "host": "lab-controller",
    "project_version": "0.1.0",
    "git_commit": "abc1234",
}


def make_row(**overrides: Any) -> dict[str, Any]:
    """One ok job with every column present; override any field."""
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(
        run=RUN_INFO["id"], tag=RUN_INFO["tag"], status="ok", error=None,
        p50_ms=10.0, p90_ms=11.0, p95_ms=11.5, p99_ms=13.0, mean_ms=10.4, std_ms=0.8,
        cv=0.077, throughput=96.0, n_iters=500, peak_rss_mb=210.0, accuracy=0.75,
        energy_mj=30.0, avg_power_w=3.1, throttled=False, size_bytes=40_000_000,
        params=11_700_000, macs=1_800_000_000, precision="fp32", threads=4, load_s=0.9,
        first_infer_ms=45.0,
    )  # fmt: skip
    row.update(overrides)
    return row


def synthetic_results(seed: int = 0) -> pd.DataFrame:
    """24 jobs; the (rpi5, resnet18, int8-ptq, openvino) job failed; rpi5 measures no energy."""
    rng = np.random.default_rng(seed)
    speed = {"fp32": 1.0, "fp16": 0.7, "int8-ptq": 0.4}
    acc_drop = {"fp32": 0.0, "fp16": 0.001, "int8-ptq": 0.012}
    size = {"fp32": 46_000_000, "fp16": 23_000_000, "int8-ptq": 12_000_000}
    rows = []
    for device in DEVICES:
        base = 8.0 if device.startswith("jetson") else 35.0
        for model in MODELS:
            for variant in VARIANTS:
                for runtime in RUNTIMES:
                    p50 = base * speed[variant] * (1.15 if runtime == "openvino" else 1.0)
                    p50 *= float(rng.uniform(0.95, 1.05))
                    std = None if (variant == "fp16" and runtime == "openvino") else p50 * 0.05
                    power = None if device == NO_SENSOR_DEVICE else POWER_W[runtime]
                    rows.append(
                        make_row(
                            model=model, variant=variant, device=device, runtime=runtime,
                            p50_ms=p50, p90_ms=p50 * 1.1, p95_ms=p50 * 1.15,
                            p99_ms=p50 * 1.3, mean_ms=p50 * 1.02, std_ms=std,
                            cv=None if std is None else 0.05, throughput=1000 / p50,
                            accuracy=None if model == "yolo-det" else 0.76 - acc_drop[variant],
                            size_bytes=size[variant], precision=variant.split("-")[0],
                            avg_power_w=power, energy_mj=None if power is None else p50 * power,
                            throttled=_throttled((device, model, variant, runtime)),
                        )
                    )  # fmt: skip
    for row in rows:
        if (row["device"], row["model"], row["variant"], row["runtime"]) == FAILED_JOB:
            keep = {"run", "tag", "model", "variant", "device", "runtime", "precision", "threads"}
            row.update({c: None for c in RESULT_COLUMNS if c not in keep})
            row.update(status="failed", error=FAILED_ERROR)
    # Object columns holding None, as a store query returns them.
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype(object)


def _throttled(job: tuple[str, str, str, str]) -> bool | None:
    if job == THROTTLE_UNKNOWN_JOB:
        return None
    return job in THROTTLED_JOBS


FACTS: dict[str, dict[str, Any]] = {
    "jetson-orin-nano": {
        "python": "3.10.12", "platform": "Linux-5.15-tegra-aarch64", "machine": "aarch64",
        "cpu_count": 6, "runtimes": {"onnxruntime": "1.18.0", "openvino": "2024.4"},
    },
    "rpi5": {
        "python": "3.11.2", "platform": "Linux-6.6-rpi-aarch64", "machine": "aarch64",
        "cpu_count": 4, "runtimes": {"onnxruntime": "1.32.0", "openvino": "2026.4.1"},
    },
}  # fmt: skip
