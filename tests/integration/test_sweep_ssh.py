"""A real sweep through the CLI over three SSH lab boards: Ray actors, the SSH transport,
the agent zipapp sent by hash, ONNX Runtime on the "board", every result in the store.

One board has a name and a work directory full of spaces and shell metacharacters, and no
SFTP subsystem (its files go over the exec channel).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

import harness.store
from harness.cli import main

pytestmark = pytest.mark.usefixtures("ray_local")

FAST = "measure: {warmup_iters: 5, warmup_s: 0.1, min_iters: 30, min_s: 0.2, timeout_s: 120, quiet: null}"


@pytest.fixture(scope="module")
def ssh_sweep(tmp_path_factory: pytest.TempPathFactory, artifact_cache, ssh_lab):  # noqa: ANN001, ANN201
    tmp = tmp_path_factory.mktemp("ssh-sweep")
    canary = f"eh-pwned-{secrets.token_hex(4)}"
    hosts = ssh_lab(3)
    for h in hosts:
        h.start()  # a fault test earlier in the session may have killed one
    hosts[2].set_sftp(False)  # one board without an SFTP subsystem: files go over the exec channel
    names = ["lab-a", "lab-b", f"board 3 ;$(touch {canary}) 'q'"]
    workdirs = [tmp / "a", tmp / "b", tmp / f"work dir ;$(touch {canary})"]
    devices = [
        {"name": name, "kind": "generic", "host": h.address, "port": h.port, "user": h.user, "key": str(h.key),
         "known_hosts": str(h.known_hosts), "python": sys.executable, "workdir": str(wd), "runtimes": ["onnxruntime"]}
        for name, h, wd in zip(names, hosts, workdirs)
    ]
    inventory = tmp / "inventory.yaml"
    inventory.write_text(json.dumps({"devices": devices}, indent=1))  # JSON is YAML, and quotes every odd name
    suite = tmp / "suite.yaml"
    suite.write_text(textwrap.dedent("""
        name: ssh-lab
        models:
          - builtin: digits-cnn
        variants: [fp32, int8-dynamic]
        runtimes: [onnxruntime]
        """).lstrip() + FAST + "\n")
    cache_root = artifact_cache.root.parent  # reuse the session's trained digits CNN
    (cache_root / "artifacts").mkdir(exist_ok=True)
    db = tmp / "h.db"
    code = main(["sweep", str(suite), "--inventory", str(inventory), "--store", str(db), "--cache-dir", str(cache_root),
                 "--no-report", "-q"])
    yield {"code": code, "db": db, "names": names, "workdirs": workdirs, "canary": canary, "tmp": tmp}
    hosts[2].set_sftp(True)


def test_sweep_over_three_ssh_boards_stores_every_result(ssh_sweep: dict) -> None:
    assert ssh_sweep["code"] == 0
    with harness.store.open(ssh_sweep["db"]) as st:
        df = st.results()
    assert len(df) == 6 and set(df.status) == {"ok"}, df[["device", "variant", "status", "error"]]
    assert sorted(df.device.value_counts().to_dict().items()) == sorted((n, 2) for n in ssh_sweep["names"])
    assert (df.accuracy >= 0.95).all() and (df.p50_ms > 0).all()
    with sqlite3.connect(ssh_sweep["db"]) as c:
        transfer = {d: json.loads(t)["transfer"] for d, t in c.execute(
            "SELECT j.device, r.details_json FROM jobs j JOIN results r ON r.job_id = j.id")}
    assert transfer == {ssh_sweep["names"][0]: "sftp", ssh_sweep["names"][1]: "sftp", ssh_sweep["names"][2]: "exec"}


def test_hostile_name_and_workdir_work_and_nothing_is_executed(ssh_sweep: dict) -> None:
    for wd in ssh_sweep["workdirs"]:
        cache = sorted(p.name for p in (wd / "cache").iterdir())
        assert sum(n.endswith(".pyz") for n in cache) == 1 and sum(n.endswith(".onnx") for n in cache) == 2
        assert not [n for n in cache if ".tmp-" in n]
        assert len(list((wd / "jobs").iterdir())) == 2
    canary = ssh_sweep["canary"]
    for where in (*ssh_sweep["workdirs"], ssh_sweep["tmp"], Path.home(), Path("/tmp"), Path.cwd()):
        assert not (where / canary).exists(), where
