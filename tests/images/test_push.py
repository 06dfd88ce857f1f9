"""``make push`` with podman into a real registry (Debian's docker-registry on loopback), in seconds.

A tiny image imported into podman under the name ``make images`` gives the cpu image stands in for it (no
container runs, so podman's host settings are not needed); tests/images/test_container.py pushes the real
cpu image the same way. Needs podman (``make test`` gets it through images/ci-build.sh).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from dlbench_kfp.components import images
from dlbench_kfp.pipelines import registry
from tests.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.container


@pytest.fixture
def podman():
    if (
        shutil.which("podman") is None
    ):  # as CI's machine starts: install it (root or sudo), as ci-build.sh does
        setup = subprocess.run(["images/podman-host.sh"], cwd=ROOT, capture_output=True, text=True)
        if setup.returncode != 0 or shutil.which("podman") is None:
            pytest.fail(
                f"podman is missing and images/podman-host.sh could not install it: {setup.stderr[-1000:]}"
            )
    return shutil.which("podman")


@pytest.fixture
def reg(tmp_path):
    server = Registry(tmp_path / "registry").start()
    yield server
    server.stop()


def image_ids(podman, repository_prefix: str = "") -> set[str]:
    lines = subprocess.run(
        [podman, "images", "--no-trunc", "--format", "{{.Id}} {{.Repository}}"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return {
        line.split()[0]
        for line in lines
        if line.split()[1:2] and line.split()[1].startswith(repository_prefix)
    }


def test_make_push_tags_the_built_image_pushes_it_and_compile_pins_its_digest(podman, reg, tmp_path):
    tag = "push-test-" + secrets.token_hex(4)  # a tag of its own: the engine's store is shared
    local = images.image("cpu", images.DEFAULT_REGISTRY, tag)  # what `make images TAG=...` would have built
    target = f"{reg.host}/team/dlbench-cpu:{tag}"
    before = image_ids(podman)
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs" / "hello.txt").write_text("tiny\n")
    with tarfile.open(tmp_path / "tiny.tar", "w") as tar:
        tar.add(tmp_path / "rootfs" / "hello.txt", arcname="hello.txt")
    imported = subprocess.run(
        [podman, "import", "--change", "ENV DLBENCH_GIT_COMMIT=0000000", str(tmp_path / "tiny.tar"), local],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    env = {k: v for k, v in os.environ.items() if k not in (images.REGISTRY_ENV, images.TAG_ENV)}
    env["ENGINE"] = "podman"
    try:
        proc = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "push",
                f"REGISTRY={reg.host}/team",
                f"TAG={tag}",
                "KINDS=cpu",
                "INSECURE=1",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert f"push: tagging {local} as {target}" in out
        assert "was built from commit 0000000" in out, "an image of another commit is pointed out"
        found = re.search(rf"push: {re.escape(target)} = (\S+)@(sha256:[0-9a-f]{{64}})", out)
        assert found, out
        digest = found.group(2)
        # the registry holds that digest under the tag, and hands the image out by it
        assert registry.resolve(target) == digest
        pulled = subprocess.run(
            [podman, "pull", "--tls-verify=false", f"{reg.host}/team/dlbench-cpu@{digest}"],
            capture_output=True,
            text=True,
        )
        assert pulled.returncode == 0, pulled.stderr
        # the command push printed compiles a pipeline naming the image by that digest
        command = next(line.strip() for line in reversed(out.splitlines()) if "dlbench compile" in line)
        assert command.startswith(f"DLBENCH_REGISTRY={reg.host}/team DLBENCH_IMAGE_TAG={tag} dlbench compile")
        args = command.split()
        compiled = subprocess.run(
            [str(Path(sys.executable).parent / "dlbench"), *args[3:], "--out", str(tmp_path / "pinned.yaml")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**env, **dict(a.split("=", 1) for a in args[:2])},
        )
        assert compiled.returncode == 0, compiled.stderr
        pipeline = next(yaml.safe_load_all((tmp_path / "pinned.yaml").read_text()))
        assert {e["container"]["image"] for e in pipeline["deploymentSpec"]["executors"].values()} == {
            f"{reg.host}/team/dlbench-cpu@{digest}"
        }
    finally:
        subprocess.run([podman, "rmi", "--force", local, target], capture_output=True)
        for image_id in (
            image_ids(podman, reg.host) - before
        ):  # the pull by digest (the engine's store is shared)
            subprocess.run([podman, "rmi", "--force", image_id], capture_output=True)


def test_make_push_without_a_registry_says_how(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (images.REGISTRY_ENV, images.TAG_ENV)}
    proc = subprocess.run(
        ["make", "--no-print-directory", "push", "KINDS=cpu"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "push: no registry: make push REGISTRY=host[:port]/namespace" in proc.stderr
