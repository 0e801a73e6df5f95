"""Past one machine: a device with ``site: lab-b`` is driven from the Ray node that
advertises ``site:lab-b``; a device without a site from the coordinator's node; a site no
node advertises fails its jobs with the reason instead of hanging the sweep.

Two real Ray nodes on this machine (ray.cluster_utils), the sweep joined with
``--ray-address``, the lab-b board a real sshd of the SSH lab.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import harness.store

ROOT = Path(__file__).resolve().parents[2]


def test_site_devices_are_driven_from_their_site_node(ssh_lab, artifact_cache, tmp_path: Path) -> None:  # noqa: ANN001
    host = ssh_lab(1)[0]
    host.start()
    devices = [
        {"name": "near", "kind": "local", "workdir": str(tmp_path / "near"), "runtimes": ["sleep"]},
        {"name": "far", "kind": "generic", "site": "lab-b", "host": host.address, "port": host.port,
         "user": host.user, "key": str(host.key), "known_hosts": str(host.known_hosts), "python": sys.executable,
         "workdir": str(tmp_path / "far"), "runtimes": ["sleep"]},
        {"name": "nowhere", "kind": "generic", "site": "lab-z", "host": "10.255.255.1", "python": sys.executable,
         "runtimes": ["sleep"]},
    ]  # fmt: skip
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(json.dumps({"devices": devices}))
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: sites\nmodels: [{builtin: digits-cnn}]\nvariants: [fp32]\nruntimes: [sleep]\n"
                     "measure: {warmup_iters: 2, warmup_s: 0.0, min_iters: 10, min_s: 0.3, timeout_s: 60, quiet: null}\n")
    cache = artifact_cache.root.parent
    (cache / "artifacts").mkdir(exist_ok=True)
    db = tmp_path / "h.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/integration/multisite_driver.py"), str(suite), "--inventory", str(inventory),
         "--store", str(db), "--cache-dir", str(cache), "--no-report", "-q"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["code"] == 3  # 'nowhere' could not be placed

    with harness.store.open(db) as st:
        df = st.results().set_index("device")
    assert df.loc["near", "status"] == "ok" and df.loc["far", "status"] == "ok"
    assert df.loc["nowhere", "status"] == "failed"
    assert "site:lab-z" in df.loc["nowhere", "error"] and "ray start" in df.loc["nowhere", "error"]
    with sqlite3.connect(db) as conn:
        details = {dev: json.loads(d) for dev, d in conn.execute(
            "SELECT j.device, r.details_json FROM jobs j JOIN results r ON r.job_id = j.id")}
    assert details["near"]["ray_node"] == out["head"]
    assert details["far"]["ray_node"] == out["site"]
    # The site node had none of the coordinator's files: it fetched them by hash, then sent them on.
    assert details["far"]["staged_bytes"] > 0 and "staged_bytes" not in details["near"]
