"""An RGB 3x32x32 image folder the test writes runs a small study end to end, report included: through
``dlbench study`` and through ``dlbench run --local`` (kfp.local, subprocess runner, into an S3 server on
loopback). A few hundred images, one epoch of two steps, a timm model, an SVM and a random forest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_registries import CLASSES, write_rgb_folder

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def rgb_spec(root: str) -> dict:
    return {
        "name": "pets",
        "data": {"datasets": ["pets"], "source": "folder", "root": root},
        "train": {
            "max_steps_per_epoch": 2,
            "grids": [
                {
                    "models": ["timm:resnet10t"],
                    "in_channels": [3],
                    "input_size": [32],
                    "batch_size": [8],
                    "epochs": [1],
                    "engine": ["resident"],
                }
            ],
        },
        "svm": {"kernels": ["rbf"], "estimators": ["svm", "random_forest"], "n_train": 150},
        "profile": {"input_sizes": [32], "in_channels": [3]},
        "onnx": {"in_channels": 3, "input_size": 32, "batch_sizes": [1], "warmup": 1, "iterations": 2},
    }


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rgbstudy")
    folder = write_rgb_folder(root / "images", n=100)  # 300 images in 3 classes
    path = root / "pets.yaml"
    path.write_text(yaml.safe_dump(rgb_spec(str(folder)), sort_keys=False))
    return path


def check_report(md: str) -> None:
    assert "resnet10t (timm)" in md and "3x32x32" in md and "image folder" in md  # the registries' labels
    assert "Random forest" in md and "SVM rbf" in md


def test_dlbench_study_runs_an_rgb_folder_end_to_end(spec_file, tmp_path, capsys):
    from dlbench.cli import main

    out = tmp_path / "study"
    assert main(["study", "--spec", str(spec_file), "--out", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in out.rglob("record.json")]
    assert {r["step"] for r in records} == {"data", "train", "svm", "profile", "onnx", "report"}
    assert all(r["status"] == "ok" for r in records), [(r["step"], r.get("error")) for r in records]
    manifest = json.loads((out / "data" / "pets" / "manifest.json").read_text())
    assert manifest["shape"] == [3, 32, 32] and manifest["classes"] == list(CLASSES)
    (train,) = [r for r in records if r["step"] == "train"]
    assert train["metrics"]["input_shape"] == "3x32x32" and train["metrics"]["classes"] == list(CLASSES)
    check_report((out / "report" / "report.md").read_text())


def test_dlbench_run_local_runs_an_rgb_folder_end_to_end(spec_file, s3_server, tmp_path):
    work = tmp_path / "kfp"
    result = subprocess.run(
        [sys.executable, "-m", "dlbench", "run", "--local", "--spec", str(spec_file)]
        + ["--store", "s3://rgb-study/runs", "--create-bucket", "--work", str(work)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TQDM_DISABLE": "1", **s3_server.env()},
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    run = re.search(r"^run: (\S+)$", result.stdout, re.M).group(1)
    assert "Pipeline 'dlbench-pets' finished with status SUCCESS" in (work / run / "pipeline.log").read_text()
    from dlbench_kfp.stores.s3 import S3Store

    store = S3Store.from_url("s3://rgb-study/runs", env=s3_server.env())
    keys = {o.key for o in store.list(run)}
    records = [json.loads(store.read_bytes(k)) for k in keys if k.endswith("/record.json")]
    assert {r["step"] for r in records} == {"data", "train", "svm", "profile", "onnx", "report"}
    assert all(r["status"] == "ok" for r in records), [(r["step"], r.get("error")) for r in records]
    check_report(store.read_bytes(f"{run}/report/report.md").decode())
