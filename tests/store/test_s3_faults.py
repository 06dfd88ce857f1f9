"""The S3 store when its server goes away mid-upload (a real rclone S3 server, killed with SIGKILL):
back within the retry deadline, the upload completes and verifies; gone for good, one line names the local
run and the command that publishes it again, and that command then completes the store."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from dlbench.cli import main
from dlbench.store import MANIFEST_NAME, fetch_run, verify_tree, write_manifest
from dlbench_kfp.pipelines.local_publish import publish_run, verify_stored
from dlbench_kfp.stores.s3 import S3Store

MB = 1024 * 1024
RUN = "dlbench-tiny-2026-01-01-00-00-00-000000"


def kfp_local_run(work: Path) -> Path:
    """A finished kfp.local run folder as ``dlbench run --local`` leaves it: the report task's bundle
    (MANIFEST.json beside report/) and a train task's output with its weights."""
    run_dir = work / RUN
    bundle = run_dir / "report" / "study"
    (bundle / "report").mkdir(parents=True)
    (bundle / "report" / "report.html").write_text("<html>report</html>\n")
    (bundle / "spec.yaml").write_text("name: tiny\n")
    (bundle / "train" / "resnet18-abc").mkdir(parents=True)
    rec = {"step": "train", "run_id": "resnet18-abc", "status": "ok", "config": {"model": "resnet18"}}
    (bundle / "train" / "resnet18-abc" / "record.json").write_text(json.dumps(rec))
    write_manifest(bundle)
    task = run_dir / "train-cpu" / "run"
    task.mkdir(parents=True)
    (task / "record.json").write_text(json.dumps(rec))
    (task / "best.pt").write_bytes(os.urandom(24 * MB))
    return run_dir


def kill_after(store: S3Store, server, after_bytes: int, restart_after_s: float | None = None) -> None:
    """Kill ``server`` once ``after_bytes`` went through ``store``; restart it after ``restart_after_s``."""
    sent, lock, done = [0], threading.Lock(), []
    real_put = store.put_file

    def tick(n):
        with lock:
            sent[0] += n
            if sent[0] > after_bytes and not done:
                done.append(1)
                server.kill()
                if restart_after_s is not None:
                    threading.Timer(restart_after_s, server.start).start()

    store.put_file = lambda path, key, progress=None: real_put(path, key, progress=tick)


def test_a_server_restart_mid_upload_is_waited_out_and_the_run_verifies(own_s3_server, tmp_path):
    server = own_s3_server
    run_dir = kfp_local_run(tmp_path / "work")
    store = S3Store.from_url(f"s3://{server.bucket}/runs", env=server.env(), part_size=5 * MB)
    assert store.deadline >= 60  # the default covers a restart
    kill_after(
        store, server, 8 * MB, restart_after_s=15
    )  # SeaweedFS-class servers take ~18 s to answer again
    info = publish_run(run_dir, store, log=lambda *_: None)
    assert info["run"] == RUN and info["models"] == 1
    after = S3Store.from_url(f"s3://{server.bucket}/runs", env=server.env())
    assert verify_stored(after, RUN) == []
    got = tmp_path / "got"
    fetch_run(after, RUN, got, models=True, progress=False)
    assert verify_tree(got) == []
    assert (got / "models" / "train" / "resnet18-abc" / "best.pt").read_bytes() == (
        run_dir / "train-cpu" / "run" / "best.pt"
    ).read_bytes()
    assert after.incomplete_uploads(RUN) == [] and store._client.open_uploads == {}


def test_a_server_gone_for_good_then_publish_completes_the_store(
    own_s3_server, tmp_path, monkeypatch, capsys
):
    server = own_s3_server
    work = tmp_path / "work"
    run_dir = kfp_local_run(work)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DLBENCH_S3_RETRY_DEADLINE_S", "3")
    url = f"s3://{server.bucket}/runs"
    opened: list[S3Store] = []
    real_from_url = S3Store.from_url.__func__

    def from_url(cls, *args, **kwargs):
        store = real_from_url(cls, *args, **kwargs)
        opened.append(store)
        if len(opened) == 1:
            kill_after(
                store, server, 20 * MB
            )  # mid-way through the second 16 MiB part: the server is gone for good
        return store

    monkeypatch.setattr(S3Store, "from_url", classmethod(from_url))
    assert main(["publish", RUN, "--work", str(work), "--store", url]) == 2
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert "Traceback" not in err
    assert f"storing run {RUN} failed: could not upload" in line and "unreachable" in line
    assert f"the complete run is in {run_dir}" in line
    assert f"publish it again with: dlbench publish {RUN} --work {work} --store {url}" in line
    # the upload cut short stays remembered, to be aborted once the server answers
    assert list(opened[0]._client.open_uploads.values()) == [f"runs/{RUN}/models/train/resnet18-abc/best.pt"]

    server.start()
    store = S3Store.from_url(url)
    assert not store.exists(f"{RUN}/{MANIFEST_NAME}")  # never a complete-looking run without its files
    assert opened[0].abort_incomplete(RUN) == 1 and opened[0]._client.open_uploads == {}
    assert main(["publish", RUN, "--work", str(work), "--store", url]) == 0
    assert f"stored: {url}/{RUN}" in capsys.readouterr().out
    assert verify_stored(store, RUN) == [] and store.incomplete_uploads(RUN) == []
    fetch_run(store, RUN, tmp_path / "got", models=True, progress=False)
    assert verify_tree(tmp_path / "got") == []


def test_publish_of_an_unknown_run_is_one_line(tmp_path, capsys):
    (tmp_path / "work").mkdir()
    assert (
        main(["publish", "no-such-run", "--work", str(tmp_path / "work"), "--store", str(tmp_path / "s")])
        == 2
    )
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "no run 'no-such-run'" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("value", ["soon", "-1", "inf"])
def test_a_bad_retry_deadline_is_one_line(s3_server, value):
    from dlbench.store import StoreError

    with pytest.raises(StoreError, match="DLBENCH_S3_RETRY_DEADLINE_S"):
        S3Store.from_url(
            f"s3://{s3_server.bucket}/x", env={**s3_server.env(), "DLBENCH_S3_RETRY_DEADLINE_S": value}
        )
