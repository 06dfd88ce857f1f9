"""The S3 backend against a real S3 server on loopback (rclone serve s3): what only S3 has (the environment,
ETags in transit, buckets, a server killed mid-transfer). What every backend does is in test_contract.py."""

from __future__ import annotations

import os
import threading

import pytest

from dlbench.store import MANIFEST_NAME, ChecksumMismatch, StoreError, fetch_run, open_store, verify_tree
from dlbench_kfp.stores.s3 import S3Store

MB = 1024 * 1024


def s3(server, prefix: str, **kwargs) -> S3Store:
    kwargs.setdefault("backoff", 0.05)
    return S3Store.from_url(f"s3://{server.bucket}/{prefix}", env=server.env(), **kwargs)


def test_open_store_uses_the_environment(s3_env):
    store = open_store(f"s3://{s3_env.bucket}/env-check")
    assert isinstance(store, S3Store) and store.url == f"s3://{s3_env.bucket}/env-check"
    assert s3_env.secret_key not in repr(store) and s3_env.access_key not in repr(store)


def test_upload_corrupted_in_transit_is_detected_and_removed(s3_server, tmp_path):
    store = s3(s3_server, "transit")
    src = tmp_path / "model.pt"
    src.write_bytes(os.urandom(300_000))

    class Flip:  # what a bad NIC or a buggy proxy would do: one byte changes on the way
        def __init__(self, f):
            self.f, self.done = f, False

        def read(self, n=-1):
            data = self.f.read(n)
            if data and not self.done:
                self.done = True
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    store._open = lambda path: Flip(open(path, "rb"))
    with pytest.raises(ChecksumMismatch, match="ETag .* does not match"):
        store.put_file(src, "m/model.pt")
    assert not store.exists("m/model.pt")


def test_missing_keys_and_endpoint_name_the_variables(s3_server):
    env = {k: v for k, v in s3_server.env().items() if not k.startswith("AWS_")}
    with pytest.raises(StoreError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        S3Store.from_url(f"s3://{s3_server.bucket}/x", env=env)
    env = {k: v for k, v in s3_server.env().items() if k != "DLBENCH_S3_ENDPOINT"}
    with pytest.raises(StoreError, match="DLBENCH_S3_ENDPOINT is not set"):
        S3Store.from_url(f"s3://{s3_server.bucket}/x", env=env)
    env = {**s3_server.env(), "DLBENCH_S3_ENDPOINT": s3_server.endpoint + "/bucket"}
    with pytest.raises(StoreError, match="has a path"):
        S3Store.from_url(f"s3://{s3_server.bucket}/x", env=env)


def test_unreachable_endpoint_fails_after_retries(s3_server):
    from tests.s3server import _free_port

    env = {
        **s3_server.env(),
        "DLBENCH_S3_ENDPOINT": f"http://127.0.0.1:{_free_port()}",
        "DLBENCH_S3_RETRIES": "2",
    }
    with pytest.raises(StoreError) as err:
        S3Store.from_url(f"s3://{s3_server.bucket}/x", env=env, backoff=0.01)
    assert "unreachable (connection refused) after 2 attempts" in str(err.value)


def test_missing_bucket_offers_to_create_it(s3_server):
    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist .*--create-bucket"):
        S3Store.from_url("s3://no-such-bucket/x", env=s3_server.env(), backoff=0.01)
    store = S3Store.from_url("s3://made-by-test/x", env=s3_server.env(), create_bucket=True)
    assert store.list() == []
    with pytest.raises(StoreError, match="not valid"):
        S3Store.from_url("s3://Bad_Bucket/x", env=s3_server.env())


def test_server_killed_mid_upload_leaves_no_complete_looking_run(own_s3_server, tmp_path):
    server = own_s3_server
    tree = tmp_path / "run"
    (tree / "report").mkdir(parents=True)
    (tree / "report" / "report.html").write_text("<html></html>")
    (tree / "weights.bin").write_bytes(os.urandom(24 * MB))
    store = s3(server, "runs", part_size=5 * MB, retries=2)
    sent = [0]
    lock = threading.Lock()

    def tick(n):
        with lock:
            sent[0] += n
            if sent[0] > 8 * MB:
                server.kill()

    store_put = store.put_file
    store.put_file = lambda path, key, progress=None: store_put(path, key, progress=tick)
    with pytest.raises(StoreError) as err:
        store.put_tree(tree, "run-1", progress=False)
    text = str(err.value)
    assert "could not upload weights.bin" in text and "after 2 attempts" in text and "\n" not in text
    server.start()
    after = s3(server, "runs")
    assert not after.exists(f"run-1/{MANIFEST_NAME}")
    assert not after.exists("run-1/weights.bin")
    with pytest.raises(StoreError, match="no run 'run-1'"):
        fetch_run(after, "run-1", tmp_path / "got", progress=False)


def test_server_killed_mid_download_then_fetch_resumes(own_s3_server, tmp_path):
    server = own_s3_server
    tree = tmp_path / "run"
    tree.mkdir()
    (tree / "a.bin").write_bytes(os.urandom(48 * MB))  # larger than loopback socket buffers
    (tree / "record.json").write_text("{}")
    store = s3(server, "dl", retries=1)
    store.put_tree(tree, "r", progress=False)
    got = [0]

    def tick(n):
        got[0] += n
        if got[0] > 4 * MB:
            server.kill()

    real_get = store.get_file
    store.get_file = lambda key, path, sha256=None, size=None, progress=None: real_get(
        key, path, sha256, size, tick
    )
    with pytest.raises(StoreError) as err:
        store.get_tree("r", tmp_path / "got", progress=False)
    assert (
        "could not download s3://" in str(err.value)
        and "a.bin" in str(err.value)
        and "\n" not in str(err.value)
    )
    part = tmp_path / "got" / "a.bin.part"
    assert not (tmp_path / "got" / "a.bin").exists()
    partial = part.stat().st_size
    server.start()
    again = s3(server, "dl")
    offsets = []
    real_read = again._read
    again._read = lambda key, offset=0: (offsets.append(offset), real_read(key, offset))[1]
    fetch_run(again, "r", tmp_path / "got", models=True, progress=False)
    assert verify_tree(tmp_path / "got") == []
    assert (tmp_path / "got" / "a.bin").read_bytes() == (tree / "a.bin").read_bytes()
    assert partial >= 4 * MB and partial in offsets  # resumed where it stopped, not started over


def test_fetch_from_a_missing_bucket_suggests_only_what_fetch_can_do(s3_env, tmp_path, capsys):
    from dlbench.cli import main

    assert (
        main(["fetch", "some-run", "--to", str(tmp_path / "to"), "--store", "s3://no-such-bucket/runs"]) == 2
    )
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dlbench: error: bucket 'no-such-bucket' does not exist at http://127.0.0.1:")
    assert "check the bucket in the store URL" in line and "pass --create-bucket" not in line
    assert not (tmp_path / "to").exists()
