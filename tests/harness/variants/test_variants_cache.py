"""ArtifactCache: content keys, build-once, atomic publication under concurrency."""

from __future__ import annotations

import json
import threading
import time

import pytest

from harness.variants.cache import ArtifactCache, content_key


def test_key_is_canonical():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_builds_once(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def build(d):
        calls.append(d)
        (d / "f.txt").write_text("x")
        return {"n": 1}

    d1, m1, c1 = cache.get_or_build("k", {"x": 1}, build)
    d2, m2, c2 = cache.get_or_build("k", {"x": 1}, build)
    assert (c1, c2) == (False, True) and len(calls) == 1
    assert d1 == d2 == tmp_path / "k" / content_key({"x": 1})
    assert m1["n"] == m2["n"] == 1 and m2["key"] == d1.name and "build_s" in m2
    assert cache.lookup("k", {"x": 1})[0] == d1 and cache.lookup("k", {"x": 2}) is None


def test_failed_build_leaves_nothing(tmp_path):
    cache = ArtifactCache(tmp_path)

    def build(d):
        (d / "half.bin").write_bytes(b"0")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        cache.get_or_build("k", {"x": 1}, build)
    assert list((tmp_path / "k").iterdir()) == []


def test_concurrent_builders_leave_one_valid_dir(tmp_path):
    cache = ArtifactCache(tmp_path)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def build(d):
        (d / "payload.txt").write_text(threading.current_thread().name)
        time.sleep(0.2)  # both builders are inside build() at once
        return {"builder": threading.current_thread().name}

    def worker():
        try:
            barrier.wait()
            results.append(cache.get_or_build("k", {"same": "key"}, build))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"t{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = list((tmp_path / "k").iterdir())
    assert len(entries) == 1  # no temp dir left behind
    final = entries[0]
    meta = json.loads((final / "meta.json").read_text())
    assert (final / "payload.txt").read_text() == meta["builder"]  # files and meta from one builder
    assert sorted(c for _, _, c in results) == [False, True]
    assert {d for d, _, _ in results} == {final}
    assert all(m["builder"] == meta["builder"] for _, m, _ in results)
