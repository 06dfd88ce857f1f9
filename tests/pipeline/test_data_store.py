"""Datasets in the store: ``dlbench data push`` to a real S3 server, a study reading ``data.root: s3://...``
through ``dlbench run --local``, and a damaged object refused by its SHA-256."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlbench.io import read_json, sha256_file
from tests.conftest import make_idx_folder
from tests.pipeline.conftest import tiny_spec_dict

REPO = Path(__file__).resolve().parents[2]
STORE = "s3://dlbench/datasets"
FILES = [
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
]


def dlbench(*args: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TQDM_DISABLE": "1", **env},
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def pushed(s3_server, tmp_path_factory):
    """The tiny dataset pushed to s3://dlbench/datasets/fashion-mnist/."""
    idx = make_idx_folder(tmp_path_factory.mktemp("push") / "idx", n_train=800, n_test=200)
    result = dlbench(
        "data",
        "push",
        "--dataset",
        "fashion-mnist",
        "--root",
        str(idx),
        "--store",
        STORE,
        env=s3_server.env(),
    )
    assert result.returncode == 0, result.stderr
    return {"idx": idx, "stdout": result.stdout}


def test_data_push_uploads_the_idx_files_with_their_sha256(pushed, s3_server):
    held = s3_server.root / "dlbench" / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in held.iterdir()) == sorted([*FILES, "MANIFEST.json"])
    manifest = json.loads((held / "MANIFEST.json").read_text())
    assert {e["path"]: e["sha256"] for e in manifest["files"]} == {
        name: sha256_file(pushed["idx"] / name) for name in FILES
    }
    for name in FILES:  # byte for byte what was pushed, and each hash printed for the user
        assert (held / name).read_bytes() == (pushed["idx"] / name).read_bytes()
        assert f"{sha256_file(pushed['idx'] / name)}" in pushed["stdout"]
        assert f"{STORE}/fashion-mnist/{name}" in pushed["stdout"]


def test_data_from_the_store_splits_exactly_as_from_the_folder(pushed, s3_server, tmp_path):
    remote = dlbench(
        "data",
        "--dataset",
        "fashion-mnist",
        "--root",
        STORE,
        "--out",
        str(tmp_path / "s3"),
        env=s3_server.env(),
    )
    assert remote.returncode == 0, remote.stderr
    local = dlbench(
        "data",
        "--dataset",
        "fashion-mnist",
        "--root",
        str(pushed["idx"]),
        "--out",
        str(tmp_path / "local"),
        env={},
    )
    assert local.returncode == 0, local.stderr
    assert sha256_file(tmp_path / "s3" / "split.npz") == sha256_file(tmp_path / "local" / "split.npz")
    manifest = read_json(tmp_path / "s3" / "manifest.json")
    assert manifest["source"]["location"] == f"{STORE}/fashion-mnist"
    assert f"from {STORE}/fashion-mnist" in manifest["source"]["description"]
    assert {k: v["sha256"] for k, v in manifest["inputs"].items()} == {
        name: sha256_file(pushed["idx"] / name) for name in FILES
    }
    assert {v["path"] for v in manifest["inputs"].values()} == {f"{STORE}/fashion-mnist/{n}" for n in FILES}


def test_a_study_reads_its_data_from_s3_end_to_end(pushed, s3_server, tmp_path):
    spec = tiny_spec_dict(STORE)
    (tmp_path / "tiny-s3.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = dlbench(
        "run",
        "--local",
        "--spec",
        str(tmp_path / "tiny-s3.yaml"),
        "--store",
        str(tmp_path / "runs"),
        "--work",
        str(tmp_path / "kfp"),
        env=s3_server.env(),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    run = re.search(r"^run: (\S+)$", result.stdout, re.M).group(1)
    bundle = tmp_path / "runs" / run
    records = [read_json(p) for p in bundle.rglob("record.json")]
    assert {r["step"] for r in records} == {"data", "train", "svm", "profile", "onnx", "report"}
    assert all(r["status"] == "ok" for r in records), [(r["step"], r.get("error")) for r in records]
    (data_manifest,) = [read_json(p) for p in bundle.rglob("manifest.json") if "data" in p.parts]
    assert data_manifest["source"]["location"] == f"{STORE}/fashion-mnist"
    assert {k: v["sha256"] for k, v in data_manifest["inputs"].items()} == {
        name: sha256_file(pushed["idx"] / name) for name in FILES
    }
    # the report says where the data came from
    page = html.unescape((bundle / "report" / "report.html").read_text())
    assert f"IDX files from {STORE}/fashion-mnist" in page


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda b: bytes([b[0] ^ 0xFF]) + b[1:], "downloaded bytes do not match SHA-256"),
        # cut short: the size read back, or the size the server states, differs from the manifest's
        (lambda b: b[:-10], "do not match size|bytes, expected"),
    ],
)
def test_a_damaged_object_is_refused_by_its_hash(s3_server, tmp_path, damage, expected):
    store = "s3://dlbench/damaged-" + ("bytes" if "SHA" in expected else "size")
    idx = make_idx_folder(tmp_path / "idx", 100, 50)
    assert (
        dlbench(
            "data",
            "push",
            "--dataset",
            "fashion-mnist",
            "--root",
            str(idx),
            "--store",
            store,
            env=s3_server.env(),
        ).returncode
        == 0
    )
    held = (
        s3_server.root / "dlbench" / store.split("/", 3)[3] / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    )
    held.write_bytes(damage(held.read_bytes()))
    out = tmp_path / "split"
    result = dlbench(
        "data", "--dataset", "fashion-mnist", "--root", store, "--out", str(out), env=s3_server.env()
    )
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and re.search(expected, err[0]) and "train-images-idx3-ubyte.gz" in err[0], err
    assert not out.exists(), "nothing is written from damaged data"


def test_data_push_and_split_refuse_wrong_arguments_in_one_line(tmp_path, capsys):
    from dlbench.cli import main

    empty = tmp_path / "empty"  # an IDX folder without the files (the store beside it, not inside)
    empty.mkdir()
    cases = [
        (["data", "push", "--dataset", "fashion-mnist"], "dlbench data push needs --store"),
        (["data", "--dataset", "fashion-mnist"], "no --out folder"),
        (
            ["data", "--dataset", "fashion-mnist", "--out", str(tmp_path / "o"), "--store", "s3://b/d"],
            "--store is for dlbench data push",
        ),
        (
            [
                "data",
                "push",
                "--dataset",
                "fashion-mnist",
                "--root",
                str(empty),
                "--store",
                str(tmp_path / "s"),
            ],
            "missing train-images-idx3-ubyte[.gz]",
        ),
        (
            [
                "data",
                "push",
                "--dataset",
                "fashion-mnist",
                "--root",
                "s3://b/datasets",
                "--store",
                "s3://b/datasets",
            ],
            "is a store; push reads a folder of IDX files",
        ),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, (argv, err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()
