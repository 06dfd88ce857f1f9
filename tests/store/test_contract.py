"""The store contract: what every backend of ``dlbench.store`` must do, run against each of them.

Backends: the local folder (``LocalStore``) and S3 (``stores/s3.py`` against a real S3 server on loopback,
rclone serve s3). A new backend adds one entry to ``BACKENDS`` below and passes this file unchanged.
What only one backend has (S3's environment, ETags in transit, a server killed mid-transfer) is tested in
test_local_store.py, test_s3_store.py and test_s3_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlbench.store import (
    MANIFEST_NAME,
    ChecksumMismatch,
    LocalStore,
    Store,
    StoreError,
    fetch_run,
    find_run,
    verify_tree,
)

MB = 1024 * 1024
BACKENDS = ("folder", "s3")


@dataclass
class Backend:
    name: str
    store: Store
    stored: Callable[[str], Path]  # the file holding a key's bytes on the backend's own disk
    refused: Callable[[Path], Store]  # opens a store that refuses us and writes ``path`` to it
    refusal: str  # what the one-line error of ``refused`` says
    keeps_sha256: bool  # stores the SHA-256 with the object (S3 metadata); a folder computes it on reading
    secrets: tuple[str, ...] = ()  # what no message may contain


def _folder(tmp_path: Path, request) -> Backend:
    store = LocalStore(tmp_path / "store")

    def refused(path: Path) -> Store:
        # A folder we cannot write: below a regular file (permission bits would not stop root, as CI runs).
        blocker = tmp_path / "blocker"
        blocker.write_text("")
        bad = LocalStore(blocker / "store")
        bad.put_file(path, "x/record.json")
        return bad

    return Backend("folder", store, lambda key: store.root / key, refused, "could not write", False)


def _s3(tmp_path: Path, request) -> Backend:
    from dlbench_kfp.stores.s3 import S3Store

    server = request.getfixturevalue("s3_server")
    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    url = f"s3://{server.bucket}/{prefix}"
    store = S3Store.from_url(url, env=server.env(), part_size=5 * MB, backoff=0.05)
    wrong = "not-the-secret-0123456789"

    def refused(path: Path) -> Store:
        env = {**server.env(), "AWS_SECRET_ACCESS_KEY": wrong}
        bad = S3Store.from_url(url, env=env, backoff=0.01)
        bad.put_file(path, "x/record.json")
        return bad

    return Backend(
        "s3",
        store,
        lambda key: server.root / server.bucket / prefix / key,
        refused,
        "rejected the credentials",
        True,
        (wrong, server.secret_key),
    )


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    return {"folder": _folder, "s3": _s3}[request.param](tmp_path, request)


def make_tree(root: Path, big: int = 300_000) -> Path:
    """A run's bundle: a report, a record and a checkpoint (left out of a fetch unless ``models``)."""
    (root / "report").mkdir(parents=True)
    (root / "report" / "report.html").write_text("<html>report</html>")
    (root / "train" / "r1").mkdir(parents=True)
    (root / "train" / "r1" / "record.json").write_text(json.dumps({"step": "train"}))
    (root / "models" / "train" / "r1").mkdir(parents=True)
    (root / "models" / "train" / "r1" / "checkpoint.pt").write_bytes(os.urandom(big))
    return root


def spy_reads(store: Store) -> list[tuple[str, int]]:
    """Record (key, offset) of every read the store makes."""
    offsets: list[tuple[str, int]] = []
    real_read = store._read

    def spy(key, offset=0):
        offsets.append((key, offset))
        return real_read(key, offset)

    store._read = spy
    return offsets


class Interrupted(Exception):
    """What stops an upload half-way in these tests (a Ctrl-C, a dying process)."""


def interrupt_after(n_bytes: int) -> Callable[[int], None]:
    sent = [0]

    def tick(n: int) -> None:
        sent[0] += n
        if sent[0] > n_bytes:
            raise Interrupted(f"stopped after {sent[0]:,} bytes")

    return tick


# ---------------------------------------------------------------------------------- put, get


@pytest.mark.parametrize("size", [100_000, 12 * MB], ids=["one-part", "multipart"])
def test_put_and_get_round_trip(backend, tmp_path, size):
    store = backend.store
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(size))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    seen: list[int] = []
    info = store.put_file(src, "x/a.bin", progress=seen.append)
    assert (info.key, info.size, info.sha256) == ("x/a.bin", size, sha) and sum(seen) == size
    assert store.exists("x/a.bin") and not store.exists("x/b.bin")
    meta = store.info("x/a.bin")
    assert (meta.size, meta.sha256) == (size, sha)  # stored with the object, not just returned
    assert backend.stored("x/a.bin").stat().st_size == size
    out = store.get_file("x/a.bin", tmp_path / "back" / "a.bin")
    assert out == tmp_path / "back" / "a.bin" and out.read_bytes() == src.read_bytes()
    assert not (tmp_path / "back" / "a.bin.part").exists()
    assert store.read_bytes("x/a.bin") == src.read_bytes()
    store.delete("x/a.bin")
    assert not store.exists("x/a.bin") and store.list("x") == []
    store.delete("x/a.bin")  # deleting what is not there is no error


def test_list_is_recursive_sorted_and_scoped_to_the_folder(backend, tmp_path):
    store = backend.store
    for key, n in [("b/2.txt", 2), ("a/1.txt", 1), ("a/sub/3.txt", 3), ("ab/4.txt", 4)]:
        (tmp_path / "f").write_bytes(b"x" * n)
        store.put_file(tmp_path / "f", key)
    assert [(o.key, o.size) for o in store.list("a")] == [("a/1.txt", 1), ("a/sub/3.txt", 3)]
    assert [o.key for o in store.list("a/")] == ["a/1.txt", "a/sub/3.txt"]
    assert [o.key for o in store.list()] == ["a/1.txt", "a/sub/3.txt", "ab/4.txt", "b/2.txt"]
    assert store.list("nothing-here") == []


# ---------------------------------------------------------------------------------- atomic publish


def test_an_interrupted_upload_leaves_the_old_object_or_nothing(backend, tmp_path):
    store = backend.store
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    old.write_bytes(os.urandom(12 * MB))
    new.write_bytes(os.urandom(12 * MB))
    store.put_file(old, "m/model.pt")
    with pytest.raises(Interrupted):
        store.put_file(new, "m/model.pt", progress=interrupt_after(6 * MB))
    assert store.info("m/model.pt").sha256 == hashlib.sha256(old.read_bytes()).hexdigest()
    assert store.get_file("m/model.pt", tmp_path / "got.pt").read_bytes() == old.read_bytes()
    with pytest.raises(Interrupted):
        store.put_file(new, "m/other.pt", progress=interrupt_after(6 * MB))
    assert not store.exists("m/other.pt")
    assert [o.key for o in store.list("m")] == ["m/model.pt"]  # no temp file or half object shows


def test_tree_manifest_is_written_last_and_fetch_verifies(backend, tmp_path):
    tree = make_tree(tmp_path / "run")
    store = backend.store
    written = []
    real_put = store.put_file

    def spy(path, key, progress=None):
        written.append(key)
        return real_put(path, key, progress)

    store.put_file = spy
    manifest = store.put_tree(tree, "run-1", progress=False)
    assert written[-1] == f"run-1/{MANIFEST_NAME}" and len(written) == 4
    assert {e["path"] for e in manifest["files"]} == {
        "report/report.html",
        "train/r1/record.json",
        "models/train/r1/checkpoint.pt",
    }
    assert store.read_manifest("run-1")["files"] == manifest["files"]
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


def test_tree_without_manifest_is_not_a_run(backend, tmp_path):
    store = backend.store
    store.put_tree(make_tree(tmp_path / "run"), "r", progress=False)
    store.delete(f"r/{MANIFEST_NAME}")  # what an upload that stopped half-way leaves
    with pytest.raises(StoreError, match="no run 'r'"):
        fetch_run(store, "r", tmp_path / "got", progress=False)
    with pytest.raises(StoreError, match="does not exist") as err:
        store.read_manifest("r")
    assert "the upload did not finish" in str(err.value)
    assert not (tmp_path / "got").exists()


def test_find_run_below_a_kfp_pipeline_root(backend, tmp_path):
    """A cluster run's bundle sits at <root>/<pipeline>/<run id>/<task>/.../study/MANIFEST.json."""
    store = backend.store
    store.put_tree(make_tree(tmp_path / "run"), "dlbench-quick/5f0c1d2e-run/report/123/study", progress=False)
    assert find_run(store, "5f0c1d2e-run") == "dlbench-quick/5f0c1d2e-run/report/123/study"
    with pytest.raises(StoreError, match="no run 'other'"):
        find_run(store, "other")


# ---------------------------------------------------------------------------------- checksums


def test_corrupt_object_is_detected_and_not_written(backend, tmp_path):
    store = backend.store
    manifest = store.put_tree(make_tree(tmp_path / "run"), "r", progress=False)
    [sha] = [e["sha256"] for e in manifest["files"] if e["path"] == "report/report.html"]
    on_disk = backend.stored("r/report/report.html")
    before = on_disk.stat()
    on_disk.write_text("<html>REPORT</html>")  # same size and mtime, other bytes: bit rot, tampering
    os.utime(on_disk, ns=(before.st_atime_ns, before.st_mtime_ns))
    dest = tmp_path / "one" / "report.html"
    # against the manifest's SHA-256 on every backend; against the object's own where it keeps one
    for expected in [sha, None] if backend.keeps_sha256 else [sha]:
        with pytest.raises(ChecksumMismatch) as err:
            store.get_file("r/report/report.html", dest, sha256=expected)
        assert "SHA-256" in str(err.value) and "report/report.html" in str(err.value)
        assert "\n" not in str(err.value)
        assert not dest.exists() and not dest.with_name("report.html.part").exists()
    with pytest.raises(ChecksumMismatch) as err:
        fetch_run(store, "r", tmp_path / "got", progress=False)
    assert "report/report.html" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "got" / "report" / "report.html").exists()


def test_download_checks_the_expected_checksum_and_size(backend, tmp_path):
    """A manifest's SHA-256 and size win over what the object says about itself."""
    store = backend.store
    (tmp_path / "r.json").write_text('{"accuracy": 0.91}')
    store.put_file(tmp_path / "r.json", "r/record.json")
    dest = tmp_path / "got" / "record.json"
    with pytest.raises(ChecksumMismatch, match="SHA-256"):
        store.get_file("r/record.json", dest, sha256="0" * 64)
    with pytest.raises(ChecksumMismatch, match="has 18 bytes, expected 19"):
        store.get_file("r/record.json", dest, size=19)
    assert not dest.exists() and not dest.with_name("record.json.part").exists()


def test_a_manifest_that_is_not_one_is_refused(backend, tmp_path):
    store = backend.store
    blob = tmp_path / "m.json"
    for body, problem in [
        (
            {"format": "dlbench-manifest/1", "files": [{"path": "../evil", "bytes": 1, "sha256": "0" * 64}]},
            "field files.0.path: must be a relative path inside the folder",
        ),
        ({"format": "something-else/1", "files": []}, "is not a dlbench manifest"),
        ("{not json", "is not valid JSON"),
    ]:
        blob.write_text(body if isinstance(body, str) else json.dumps(body))
        store.put_file(blob, f"r/{MANIFEST_NAME}")
        with pytest.raises(StoreError, match=problem):
            fetch_run(store, "r", tmp_path / "got", progress=False)
        assert not (tmp_path / "evil").exists() and not (tmp_path / "got").exists()


# ---------------------------------------------------------------------------------- resume


def test_fetch_resumes_a_partial_download(backend, tmp_path):
    tree = make_tree(tmp_path / "run", big=2_000_000)
    store = backend.store
    store.put_tree(tree, "r", progress=False)
    dest = tmp_path / "got" / "models" / "train" / "r1" / "checkpoint.pt"
    dest.parent.mkdir(parents=True)
    data = (tree / "models" / "train" / "r1" / "checkpoint.pt").read_bytes()
    (dest.parent / "checkpoint.pt.part").write_bytes(data[:1_500_000])  # an interrupted earlier fetch
    offsets = spy_reads(store)
    fetch_run(store, "r", tmp_path / "got", models=True, progress=False)
    assert ("r/models/train/r1/checkpoint.pt", 1_500_000) in offsets
    assert ("r/models/train/r1/checkpoint.pt", 0) not in offsets  # not started over
    assert dest.read_bytes() == data
    assert not (dest.parent / "checkpoint.pt.part").exists()


@pytest.mark.parametrize("part", ["other-bytes", "too-long"])
def test_a_stale_part_file_is_not_trusted(backend, tmp_path, part):
    """A .part left by an older object (other bytes, or more of them) ends in the right file anyway."""
    store = backend.store
    data = os.urandom(2_000_000)
    (tmp_path / "a.bin").write_bytes(data)
    store.put_file(tmp_path / "a.bin", "a.bin")
    dest = tmp_path / "got" / "a.bin"
    dest.parent.mkdir()
    stale = os.urandom(1_500_000) if part == "other-bytes" else data + b"tail"
    dest.with_name("a.bin.part").write_bytes(stale)
    offsets = spy_reads(store)
    assert store.get_file("a.bin", dest).read_bytes() == data
    assert offsets[-1] == ("a.bin", 0) and not dest.with_name("a.bin.part").exists()


# ---------------------------------------------------------------------------------- refusals


def test_a_missing_object_is_a_one_line_error_and_writes_nothing(backend, tmp_path):
    store = backend.store
    assert store.info("no/such.bin") is None and not store.exists("no/such.bin")
    dest = tmp_path / "got" / "such.bin"
    with pytest.raises(StoreError) as err:
        store.get_file("no/such.bin", dest)
    assert str(err.value) == f"{store.describe('no/such.bin')} does not exist"
    assert not dest.exists() and not dest.with_name("such.bin.part").exists()
    with pytest.raises(StoreError, match="does not exist"):
        store.read_bytes("no/such.bin")
    with pytest.raises(StoreError, match="no run 'no'"):
        fetch_run(store, "no", tmp_path / "fetched", progress=False)
    assert not (tmp_path / "fetched").exists()


def test_a_store_that_refuses_us_fails_in_one_line_and_writes_nothing(backend, tmp_path):
    """S3: a wrong secret. The folder has no credentials: a path it cannot write stands in for them."""
    src = tmp_path / "record.json"
    src.write_text("{}")
    with pytest.raises(StoreError) as err:
        backend.refused(src)
    text = str(err.value)
    assert backend.refusal in text and "\n" not in text
    assert not any(secret in text for secret in backend.secrets)
    assert not backend.stored("x/record.json").exists() and backend.store.list() == []
