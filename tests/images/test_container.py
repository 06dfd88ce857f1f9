"""CI proves the container path: the cpu image builds here and runs the README's `docker run` lines.

This machine has no Docker engine and cannot pull from a registry, so ``images/ci-build.sh`` sets podman
up (host settings, a Debian base made with debootstrap and cached in .cache/) and builds the cpu image;
then the README's block of steps runs as written, with a ``docker`` shim that calls podman. The records
the containers wrote are checked here. Slow (minutes; the image build dominates, and is cached by the
engine on a second run). ``make container-test`` runs only this file; ``make test`` runs it with the rest.
It fails, never skips, when podman cannot be set up: a green CI means the container path ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from components import images

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- container-steps: tests/images/test_container.py runs this block as written -->"
pytestmark = pytest.mark.container


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    assert MARK in text, "README.md lost the container-steps block"
    found = re.search(r"```bash\n(.*?)```", text.split(MARK, 1)[1], re.S)
    assert found, "no ```bash block after the container-steps mark"
    return found.group(1)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Build the cpu image as CI does; return the engine, the image and a PATH whose `docker` is that engine."""
    for var in (images.REGISTRY_ENV, images.TAG_ENV):
        assert not os.environ.get(var), f"unset {var}: the README block names the default image"
    log = ROOT / ".cache" / "container-build.log"
    log.parent.mkdir(exist_ok=True)
    start = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(["images/ci-build.sh", "cpu"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(f"images/ci-build.sh cpu failed (exit {proc.returncode}) after {seconds:.0f} s; "
                    f"end of {log}:\n{tail(log)}")
    engine = subprocess.run(["images/engine.sh"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert engine in ("docker", "podman"), "images/ci-build.sh succeeded but no engine answers"
    bin_dir = tmp_path_factory.mktemp("shim")
    if engine == "podman":  # the README says `docker run`; podman takes the same arguments
        shim = bin_dir / "docker"
        shim.write_text(f'#!/bin/sh\nexec {shutil.which("podman")} "$@"\n')
        shim.chmod(0o755)
    image = images.image("cpu")
    size = subprocess.run([engine, "image", "inspect", "--format", "{{.Size}}", image],
                          capture_output=True, text=True).stdout.strip()
    print(f"\ncpu image {image}: built in {seconds:.0f} s, {int(size or 0) / 1e9:.2f} GB")
    commit = subprocess.run([engine, "run", "--rm", image, "sh", "-c", "echo $DLBENCH_GIT_COMMIT"],
                            capture_output=True, text=True).stdout.strip()
    return {"engine": engine, "image": image, "commit": commit, "path": f"{bin_dir}:{os.environ['PATH']}"}


def is_commit_of_this_checkout(commit: str) -> bool:
    """HEAD or one of its ancestors (HEAD may move on while the image builds)."""
    return bool(commit) and subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=ROOT).returncode == 0


def run_in_image(built, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([built["engine"], "run", "--rm", built["image"], *argv], capture_output=True, text=True)


def test_image_runs_as_a_non_root_user_with_dlbench_on_path(built):
    who = run_in_image(built, "id", "-u")
    assert who.returncode == 0, who.stderr
    assert who.stdout.strip() == "1000"
    version = run_in_image(built, "dlbench", "--version")
    assert version.returncode == 0, version.stderr
    assert images.tag() in version.stdout
    assert is_commit_of_this_checkout(built["commit"]), "the image should carry the commit it was built from"


def test_readme_container_steps_write_correct_records(built, tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "PATH": built["path"], "OUT": str(out)}
    start = time.monotonic()
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block()], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    print(f"\nREADME container steps: {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, f"README container steps failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"

    data = json.loads((out / "data/fashion-mnist/record.json").read_text())
    assert data["step"] == "data" and data["status"] == "ok", data.get("error")
    m = data["metrics"]
    assert (m["n_train"], m["n_val"], m["n_test"]) == (49000, 7000, 14000), "all 70,000 images, split 70/10/20"
    assert m["source"] == "idx" and m["sample"] is False
    with np.load(out / "data/fashion-mnist/split.npz") as split:
        assert split["x_train"].shape == (49000, 28, 28) and split["y_test"].shape == (14000,)
    assert data["environment"]["git_commit"] == built["commit"]
    assert data["environment"]["libraries"]["torch"].startswith("2.14.1")

    train = json.loads((out / "train/resnet18/record.json").read_text())
    assert train["step"] == "train" and train["status"] == "ok", train.get("error")
    tm = train["metrics"]
    assert 0.0 <= tm["test_accuracy"] <= 1.0 and tm["steps_per_epoch"] == 2 and len(tm["history"]) == 1
    assert train["device"]["type"] == "cpu"
    assert (out / "train/resnet18" / Path(train["outputs"]["checkpoint"]["path"]).name).is_file()

    for step, folder in (("svm", "svm/rbf"), ("profile", "profile"), ("onnx", "onnx/resnet18")):
        record = json.loads((out / folder / "record.json").read_text())
        assert record["step"] == step and record["status"] == "ok", (step, record.get("error"))
    svm = json.loads((out / "svm/rbf/record.json").read_text())["metrics"]
    assert svm["backend"] == "sklearn" and svm["n_train"] == 1000 and 0.5 < svm["accuracy"] <= 1.0
    onnx = json.loads((out / "onnx/resnet18/record.json").read_text())["metrics"]
    assert onnx["max_abs_diff"] <= 1e-3 and {r["runtime"] for r in onnx["results"]} == {"onnxruntime", "pytorch"}
