"""CI proves the container path: the cpu image builds here and runs the `docker run` lines of
docs/containers.md.

This machine has no Docker engine and cannot pull from a registry, so ``images/ci-build.sh`` sets podman
up (host settings, a Debian base made with debootstrap and cached in .cache/) and builds the cpu image;
then the block of steps in docs/containers.md runs as written, with a ``docker`` shim that calls podman, and
``dlbench run --local --runner docker`` runs a tiny study with kfp.local's DockerRunner through podman's
Docker API. The records the containers wrote are checked here. Slow (minutes; the image build dominates,
and is cached by the engine on a second run). ``make container-test`` runs only this file; ``make test``
runs it with the rest.
It fails, never skips, when podman cannot be set up: a green CI means the container path ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlbench_kfp.components import images
from tests.conftest import make_idx_folder

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- container-steps: tests/images/test_container.py runs this block as written -->"
pytestmark = pytest.mark.container


DOC = ROOT / "docs" / "containers.md"


def readme_block() -> str:
    text = DOC.read_text()
    assert MARK in text, "docs/containers.md lost the container-steps block"
    found = re.search(r"```bash\n(.*?)```", text.split(MARK, 1)[1], re.S)
    assert found, "no ```bash block after the container-steps mark"
    return found.group(1)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Build the cpu image as CI does; return the engine, the image and a PATH whose `docker` is it."""
    for var in (images.REGISTRY_ENV, images.TAG_ENV):
        assert not os.environ.get(var), f"unset {var}: the docs' block names the default image"
    log = ROOT / ".cache" / "container-build.log"
    log.parent.mkdir(exist_ok=True)
    start = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(["images/ci-build.sh", "cpu"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(
            f"images/ci-build.sh cpu failed (exit {proc.returncode}) after {seconds:.0f} s; "
            f"end of {log}:\n{tail(log)}"
        )
    engine = subprocess.run(["images/engine.sh"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert engine in ("docker", "podman"), "images/ci-build.sh succeeded but no engine answers"
    bin_dir = tmp_path_factory.mktemp("shim")
    if engine == "podman":  # the docs say `docker run`; podman takes the same arguments
        shim = bin_dir / "docker"
        shim.write_text(f'#!/bin/sh\nexec {shutil.which("podman")} "$@"\n')
        shim.chmod(0o755)
    image = images.image("cpu")
    size = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True
    ).stdout.strip()
    print(f"\ncpu image {image}: built in {seconds:.0f} s, {int(size or 0) / 1e9:.2f} GB")
    commit = subprocess.run(
        [engine, "run", "--rm", image, "sh", "-c", "echo $DLBENCH_GIT_COMMIT"], capture_output=True, text=True
    ).stdout.strip()
    return {"engine": engine, "image": image, "commit": commit, "path": f"{bin_dir}:{os.environ['PATH']}"}


def is_commit_of_this_checkout(commit: str) -> bool:
    """HEAD or one of its ancestors (HEAD may move on while the image builds)."""
    return (
        bool(commit)
        and subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=ROOT).returncode == 0
    )


def run_in_image(built, *argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [built["engine"], "run", "--rm", built["image"], *argv], capture_output=True, text=True
    )


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
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block()], cwd=ROOT, env=env, capture_output=True, text=True
    )
    print(f"\ncontainer steps of docs/containers.md: {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, (
        f"container steps of docs/containers.md failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )

    data = json.loads((out / "data/fashion-mnist/record.json").read_text())
    assert data["step"] == "data" and data["status"] == "ok", data.get("error")
    m = data["metrics"]
    assert (m["n_train"], m["n_val"], m["n_test"]) == (49000, 7000, 14000), (
        "all 70,000 images, split 70/10/20"
    )
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
    assert onnx["max_abs_diff"] <= 1e-3 and {r["runtime"] for r in onnx["results"]} == {
        "onnxruntime",
        "pytorch",
    }


TINY_SPEC = {  # every step, as small as it gets
    "name": "tiny",
    "description": "kfp.local DockerRunner in the cpu image",
    "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": None, "subsample": 600},
    "train": {
        "stem": "imagenet",
        "max_steps_per_epoch": 2,
        "grids": [
            {
                "name": "one",
                "models": ["resnet18"],
                "batch_size": [32],
                "epochs": [1],
                "device": ["cpu"],
                "engine": ["resident"],
            }
        ],
    },
    "svm": {"backends": ["sklearn"], "kernels": ["rbf"], "n_train": 200},
    "profile": {"input_sizes": [28]},
    "onnx": {"providers": ["cpu"], "batch_sizes": [1], "warmup": 1, "iterations": 2},
}


@pytest.fixture
def docker_api(built, tmp_path):
    """DOCKER_HOST for the Docker SDK: podman's Docker-compatible API on a socket of our own
    (docs/containers.md)."""
    if built["engine"] == "docker":
        yield {}
        return
    sock = tmp_path / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "-t", "0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        assert sock.exists(), "podman system service did not open its socket"
        yield {"DOCKER_HOST": f"unix://{sock}"}
    finally:
        service.terminate()
        service.wait(timeout=30)


def test_dlbench_run_local_with_docker_runner_runs_every_task_in_the_image(built, docker_api, tmp_path):
    spec = {
        **TINY_SPEC,
        "data": {**TINY_SPEC["data"], "root": str(make_idx_folder(tmp_path / "idx", 800, 200))},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**os.environ, **docker_api, "TQDM_DISABLE": "1"}
    start = time.monotonic()
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "dlbench"),
            "run",
            "--local",
            "--runner",
            "docker",
            "--spec",
            str(tmp_path / "tiny.yaml"),
            "--store",
            str(tmp_path / "store"),
            "--work",
            str(tmp_path / "kfp"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    print(f"\ndlbench run --local --runner docker (6 tasks): {time.monotonic() - start:.0f} s")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    # kfp.local's own log (which image each task ran in) goes to the run's full log, named on stdout
    full = re.search(r"^full log: (.+)$", proc.stdout, re.M)
    assert full, proc.stdout
    assert f"Found image '{built['image']}'" in Path(full.group(1)).read_text()
    records = [json.loads(p.read_text()) for p in (tmp_path / "store").rglob("record.json")]
    assert sorted(r["step"] for r in records) == ["data", "onnx", "profile", "report", "svm", "train"]
    for r in records:
        assert r["status"] == "ok", (r["step"], r.get("error"))
        # written inside a container of the image: its commit, a container's hostname, not this machine's
        assert r["environment"]["git_commit"] == built["commit"]
        assert r["environment"]["host"] != socket.gethostname()


def test_docker_runner_tasks_that_end_at_once_keep_their_exit_code_and_log(built, docker_api, capsys):
    """kfp's own run_docker_container auto-removes the container and loses a quick task's exit code (podman:
    an APIError, Docker: success); ours reads both, then removes the container."""
    import docker

    from dlbench_kfp.pipelines.local import run_container

    client = docker.DockerClient(base_url=docker_api["DOCKER_HOST"]) if docker_api else docker.from_env()
    try:
        before = {c.id for c in client.containers.list(all=True)}
        codes = [
            run_container(client, built["image"], ["sh", "-c", f"echo task-{i}; exit {i % 3}"], volumes={})
            for i in range(6)
        ]
        assert codes == [0, 1, 2, 0, 1, 2]
        out = capsys.readouterr().out
        assert all(f"task-{i}" in out for i in range(6)) and f"Found image '{built['image']}'" in out
        assert {c.id for c in client.containers.list(all=True)} == before, "every task's container is removed"
    finally:
        client.close()


def test_cpu_image_pushed_to_a_registry_pulls_back_by_digest_and_pins_the_pipeline(built, tmp_path):
    """`make push` of the image built above into a real registry (Debian's docker-registry on loopback),
    pulled back by the digest push printed, which a --pin-digests compile names (the walkthrough's steps 3
    and 5)."""
    from dlbench_kfp.pipelines import registry
    from tests.registry import Registry

    reg = Registry(tmp_path / "registry").start()
    env = {**os.environ, "PATH": built["path"], "ENGINE": built["engine"]}
    target = f"{reg.host}/dlbench/dlbench-cpu:{images.tag()}"
    pulled_id = None
    try:
        start = time.monotonic()
        proc = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "push",
                f"REGISTRY={reg.host}/dlbench",
                "KINDS=cpu",
                "INSECURE=1",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(f"\nmake push (cpu image): {time.monotonic() - start:.0f} s")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        found = re.search(rf"push: {re.escape(target)} = \S+@(sha256:[0-9a-f]{{64}})", proc.stdout)
        assert found, proc.stdout[-3000:]
        digest = found.group(1)
        assert registry.resolve(target) == digest
        by_digest = f"{reg.host}/dlbench/dlbench-cpu@{digest}"
        flags = ["--tls-verify=false"] if built["engine"] == "podman" else []
        subprocess.run([built["engine"], "rmi", target], capture_output=True)
        pull = subprocess.run([built["engine"], "pull", *flags, by_digest], capture_output=True, text=True)
        assert pull.returncode == 0, pull.stderr[-2000:]
        pulled_id = subprocess.run(
            [built["engine"], "image", "inspect", "--format", "{{.Id}}", by_digest],
            capture_output=True,
            text=True,
        ).stdout.strip()
        version = subprocess.run(
            [built["engine"], "run", "--rm", by_digest, "dlbench", "--version"],
            capture_output=True,
            text=True,
        )
        assert version.returncode == 0 and images.tag() in version.stdout, version.stderr
        out = tmp_path / "pinned.yaml"
        compiled = subprocess.run(
            [
                str(Path(sys.executable).parent / "dlbench"),
                "compile",
                "--spec",
                "quick",
                "--pin-digests",
                "--check",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**env, images.REGISTRY_ENV: f"{reg.host}/dlbench"},
        )
        assert compiled.returncode == 0, compiled.stderr
        pipeline = next(yaml.safe_load_all(out.read_text()))
        assert {e["container"]["image"] for e in pipeline["deploymentSpec"]["executors"].values()} == {
            by_digest
        }
    finally:
        reg.stop()
        subprocess.run([built["engine"], "rmi", target], capture_output=True)
        if (
            pulled_id
            and pulled_id
            != subprocess.run(
                [built["engine"], "image", "inspect", "--format", "{{.Id}}", built["image"]],
                capture_output=True,
                text=True,
            ).stdout.strip()
        ):
            subprocess.run([built["engine"], "rmi", "--force", pulled_id], capture_output=True)
