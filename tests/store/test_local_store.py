"""The local-folder store: verified writes, trees with a manifest written last, resumable verified fetch."""

from __future__ import annotations

import json
import os

import pytest

from dlbench import store as store_module
from dlbench.store import (
    MANIFEST_NAME,
    ChecksumMismatch,
    LocalStore,
    StoreError,
    build_manifest,
    fetch_run,
    find_run,
    open_store,
    register_store_backend,
    verify_tree,
)


def make_tree(root, big: int = 300_000):
    (root / "report").mkdir(parents=True)
    (root / "report" / "report.html").write_text("<html>report</html>")
    (root / "train" / "r1").mkdir(parents=True)
    (root / "train" / "r1" / "record.json").write_text(json.dumps({"step": "train"}))
    (root / "models" / "train" / "r1").mkdir(parents=True)
    (root / "models" / "train" / "r1" / "checkpoint.pt").write_bytes(os.urandom(big))
    return root


def test_put_and_get_round_trip(tmp_path):
    store = open_store(tmp_path / "store")
    assert isinstance(store, LocalStore)
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(100_000))
    info = store.put_file(src, "x/a.bin")
    assert info.size == 100_000 and store.exists("x/a.bin") and not store.exists("x/b.bin")
    assert [o.key for o in store.list("x")] == ["x/a.bin"]
    out = store.get_file("x/a.bin", tmp_path / "back" / "a.bin")
    assert out.read_bytes() == src.read_bytes()
    store.delete("x/a.bin")
    assert not store.exists("x/a.bin")


def test_tree_manifest_is_written_last_and_fetch_verifies(tmp_path):
    tree = make_tree(tmp_path / "run")
    store = LocalStore(tmp_path / "store")
    written = []
    real_put = store.put_file

    def spy(path, key, progress=None):
        written.append(key)
        return real_put(path, key, progress)

    store.put_file = spy
    manifest = store.put_tree(tree, "run-1", progress=False)
    assert written[-1] == f"run-1/{MANIFEST_NAME}"
    assert {e["path"] for e in manifest["files"]} == {
        "report/report.html",
        "train/r1/record.json",
        "models/train/r1/checkpoint.pt",
    }
    assert find_run(store, "run-1") == "run-1"
    summary = fetch_run(store, "run-1", tmp_path / "got", progress=False)
    assert summary["downloaded"] == 2 and summary["left_out"] == 1  # weights only with models=True
    assert (tmp_path / "got" / "report" / "report.html").read_text() == "<html>report</html>"
    assert not (tmp_path / "got" / "models").exists()
    assert verify_tree(tmp_path / "got") == []
    again = fetch_run(store, "run-1", tmp_path / "got", progress=False)
    assert again["downloaded"] == 0 and again["skipped"] == 2
    full = fetch_run(store, "run-1", tmp_path / "full", models=True, progress=False)
    assert full["downloaded"] == 3 and verify_tree(tmp_path / "full") == []


def test_fetch_resumes_a_partial_download(tmp_path):
    tree = make_tree(tmp_path / "run", big=2_000_000)
    store = LocalStore(tmp_path / "store")
    store.put_tree(tree, "r", progress=False)
    dest = tmp_path / "got" / "models" / "train" / "r1" / "checkpoint.pt"
    dest.parent.mkdir(parents=True)
    data = (tree / "models" / "train" / "r1" / "checkpoint.pt").read_bytes()
    (dest.parent / "checkpoint.pt.part").write_bytes(data[:1_500_000])  # an interrupted earlier fetch
    offsets = []
    real_read = store._read

    def spy(key, offset=0):
        offsets.append((key, offset))
        return real_read(key, offset)

    store._read = spy
    fetch_run(store, "r", tmp_path / "got", models=True, progress=False)
    assert ("r/models/train/r1/checkpoint.pt", 1_500_000) in offsets
    assert dest.read_bytes() == data
    assert not (dest.parent / "checkpoint.pt.part").exists()


def test_corrupt_object_is_detected_and_not_written(tmp_path):
    tree = make_tree(tmp_path / "run")
    store = LocalStore(tmp_path / "store")
    store.put_tree(tree, "r", progress=False)
    stored = tmp_path / "store" / "r" / "report" / "report.html"
    stored.write_text("<html>REPORT</html>")  # same size, other bytes (bit rot, tampering)
    with pytest.raises(ChecksumMismatch) as err:
        fetch_run(store, "r", tmp_path / "got", progress=False)
    assert "report/report.html" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "got" / "report" / "report.html").exists()


def test_tree_without_manifest_is_not_a_run(tmp_path):
    tree = make_tree(tmp_path / "run")
    store = LocalStore(tmp_path / "store")
    store.put_tree(tree, "r", progress=False)
    store.delete(f"r/{MANIFEST_NAME}")  # what an upload that stopped half-way leaves
    with pytest.raises(StoreError, match="no run 'r'"):
        fetch_run(store, "r", tmp_path / "got", progress=False)


def test_find_run_below_a_kfp_pipeline_root(tmp_path):
    """A cluster run's bundle sits at <root>/<pipeline>/<run id>/<task>/.../study/MANIFEST.json."""
    tree = make_tree(tmp_path / "run")
    store = LocalStore(tmp_path / "root")
    store.put_tree(tree, "dlbench-quick/5f0c1d2e-run/report/123/study", progress=False)
    assert find_run(store, "5f0c1d2e-run") == "dlbench-quick/5f0c1d2e-run/report/123/study"
    with pytest.raises(StoreError, match="no run 'other'"):
        find_run(store, "other")


def test_manifest_paths_cannot_escape(tmp_path):
    store = LocalStore(tmp_path / "store")
    bad = {"format": "dlbench-manifest/1", "files": [{"path": "../evil", "bytes": 1, "sha256": "0" * 64}]}
    (tmp_path / "store" / "r").mkdir(parents=True)
    (tmp_path / "store" / "r" / MANIFEST_NAME).write_text(json.dumps(bad))
    with pytest.raises(StoreError, match="field files.0.path: must be a relative path inside the folder"):
        fetch_run(store, "r", tmp_path / "got", progress=False)
    assert not (tmp_path / "got").exists() and not (tmp_path / "evil").exists()


def test_build_manifest_skips_partial_files(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt.part").write_text("partial")
    assert [e["path"] for e in build_manifest(tmp_path)["files"]] == ["a.txt"]


def test_unknown_store_scheme_is_one_line_error():
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("gs://bucket/x")


def test_a_registered_backend_serves_its_url_scheme(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BACKENDS", dict(store_module.BACKENDS))

    @register_store_backend
    class Shelf(LocalStore):
        scheme = "shelf"

        @classmethod
        def from_url(cls, url, create_bucket=False):
            return cls(tmp_path / url.removeprefix("shelf://"))

    shelf = open_store("shelf://runs")
    assert isinstance(shelf, Shelf) and shelf.root == tmp_path / "runs"
    folder = open_store(f"file://{tmp_path}/runs")
    assert type(folder) is LocalStore and folder.root == tmp_path / "runs"
