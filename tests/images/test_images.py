"""The images' definitions: names from one module, Dockerfiles that follow the rules, pinned requirements.

These run everywhere in seconds; tests/images/test_container.py builds the cpu image and runs steps in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import dlbench
from dlbench_kfp.components import images

ROOT = Path(__file__).resolve().parents[2]


def pins(kind: str) -> dict[str, str]:
    out = {}
    for line in (ROOT / "images" / kind / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and not re.search(r"[<>=!~*,; ]", version), (
                f"{kind}: {line!r} is not pinned with =="
            )
            out[name.lower()] = version
    return out


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_image_names_come_from_one_module(monkeypatch):
    monkeypatch.delenv(images.REGISTRY_ENV, raising=False)
    monkeypatch.delenv(images.TAG_ENV, raising=False)
    assert images.image("cpu") == "ghcr.io/dlbench/dlbench-cpu:0.1.0"
    assert images.TAG == dlbench.__version__, "bump the image tag with the package version"
    monkeypatch.setenv(images.REGISTRY_ENV, "registry.example.com/me/")
    monkeypatch.setenv(images.TAG_ENV, "dev")
    assert images.image("cuda") == "registry.example.com/me/dlbench-cuda:dev"
    with pytest.raises(KeyError, match="known: cpu, cuda, rapids"):
        images.image("tpu")


def test_makefile_and_scripts_read_the_same_names(monkeypatch):
    monkeypatch.setenv(images.REGISTRY_ENV, "localhost")
    out = subprocess.run(
        [sys.executable, "components/images.py", "rapids"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.strip() == "localhost/dlbench-rapids:" + images.tag()
    bad = subprocess.run(
        [sys.executable, "components/images.py", "gpu"], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "usage" in bad.stderr
    dry = subprocess.run(["make", "-n", "images"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert [line.split()[-1] for line in dry.stdout.splitlines() if "images/build.sh" in line] == list(
        images.KINDS
    )


def dockerfile_instructions() -> list[str]:
    """images/Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / images.DOCKERFILE).read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    out: list[str] = []
    for line in lines:
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line
        else:
            out.append(line)
    return out


def test_one_dockerfile_builds_every_kind_by_the_same_rules():
    assert {images.dockerfile(kind) for kind in images.KINDS} == {images.DOCKERFILE}
    text = (ROOT / images.DOCKERFILE).read_text()
    instructions = dockerfile_instructions()
    assert instructions[:2] == ["ARG BASE_IMAGE", "FROM ${BASE_IMAGE}"], (
        "the base image must be a build argument"
    )
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (Kubernetes runAsNonRoot needs a number)"
    # a base that has a user with that uid (Ubuntu's ubuntu) loses it first, or useradd fails
    user_step = next(line for line in instructions if f"useradd --uid {uid}" in line)
    removal = f'if id -u {uid} >/dev/null 2>&1; then userdel --remove "$(id -un {uid})"; fi'
    assert removal in user_step and user_step.index(removal) < user_step.index(f"useradd --uid {uid}")
    assert "PIP_NO_CACHE_DIR=1" in text
    for banned in ("build-essential", "gcc", "g++", ":latest", "pip install --upgrade"):
        assert banned not in text, f"{banned!r} in the Dockerfile"
    assert "COPY images/${KIND}/requirements.txt /tmp/requirements.txt" in instructions
    assert "--no-deps" in text, "dlbench must install without pulling unpinned dependencies"


def test_each_kind_gets_every_build_arg_the_dockerfile_takes(monkeypatch):
    declared = {
        line.split()[1].split("=")[0] for line in dockerfile_instructions() if line.startswith("ARG ")
    }
    monkeypatch.delenv("BASE_IMAGE", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    for kind, spec in images.KINDS.items():
        args = images.build_args(kind)
        assert set(args) | {"GIT_COMMIT"} == declared, kind  # images/build.sh adds GIT_COMMIT
        assert (ROOT / "images" / args["KIND"] / "requirements.txt").is_file(), kind
        base = args["BASE_IMAGE"]
        assert base == spec.base_image and ":" in base and not base.endswith(":latest"), (
            f"pin {kind}'s base: {base}"
        )
        assert set(args["LEFT_OUT"].split()) <= {Requirement(r).name for r in project()["dependencies"]}, kind
    assert images.build_args("cpu")["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert images.build_args("cuda")["LEFT_OUT"] == "onnxruntime"
    # the environment's BASE_IMAGE and PIP_EXTRA_INDEX_URL (empty too: PyPI only) win over the kind's
    env = {"BASE_IMAGE": "localhost/debian-py:bookworm", "PIP_EXTRA_INDEX_URL": ""}
    assert images.build_args("cpu", env) == {
        "KIND": "cpu",
        "BASE_IMAGE": "localhost/debian-py:bookworm",
        "PIP_EXTRA_INDEX_URL": "",
        "LEFT_OUT": "",
    }


def test_build_script_passes_the_kinds_build_args(tmp_path):
    """images/build.sh's command line, with an engine that prints it (ENGINE: images/engine.sh's answer)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("BASE_IMAGE", "PIP_EXTRA_INDEX_URL", images.REGISTRY_ENV, images.TAG_ENV)
    }
    env["ENGINE"] = "echo"
    out = subprocess.run(
        ["images/build.sh", "rapids", "--network=host"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("build "))
    assert line.startswith(f"build -f images/Dockerfile -t {images.image('rapids')} --build-arg GIT_COMMIT=")
    assert line.endswith(
        " --build-arg KIND=rapids --build-arg BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04"
        " --build-arg PIP_EXTRA_INDEX_URL= --build-arg LEFT_OUT=torch torchvision onnxruntime"
        " --network=host ."
    )
    env["BASE_IMAGE"] = "localhost/debian-py:bookworm"
    out = subprocess.run(["images/build.sh", "cpu"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert (
        "--build-arg BASE_IMAGE=localhost/debian-py:bookworm --build-arg PIP_EXTRA_INDEX_URL=https://"
        in out.stdout
    )
    bad = subprocess.run(["images/build.sh", "tpu"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "usage" in bad.stderr and "build -f" not in bad.stdout


def test_requirements_pin_what_dlbench_needs():
    """Every dependency of dlbench[kfp] is pinned in the cpu image, at a version pyproject allows."""
    proj = project()
    cpu = pins("cpu")
    for spec in proj["dependencies"] + proj["optional-dependencies"]["kfp"]:
        req = Requirement(spec)
        name = req.name.lower()
        assert name in cpu, f"{name} is not in images/cpu/requirements.txt (run images/lock.py)"
        assert req.specifier.contains(Version(cpu[name]), prereleases=True), (
            f"{name}=={cpu[name]} breaks {spec}"
        )


def test_gpu_images_swap_in_their_gpu_packages():
    cpu, cuda, rapids = pins("cpu"), pins("cuda"), pins("rapids")
    assert "onnxruntime" in cpu and "onnxruntime" not in cuda
    assert Version(cuda["onnxruntime-gpu"]) >= Version("1.27"), "onnxruntime-gpu < 1.27 is the CUDA 12 line"
    assert cuda["torch"] == cpu["torch"] and cuda["torchvision"] == cpu["torchvision"]
    assert "torch" not in rapids and "onnxruntime" not in rapids and rapids["cuml-cu13"].startswith("26.10")
    assert Version(rapids["numpy"]) < Version("2.5"), "cuML 26.10 calls np.row_stack, gone in numpy 2.5"
    for kind, p in (("cpu", cpu), ("cuda", cuda)):
        assert not [n for n in p if (n.startswith("nvidia-") and n != "nvidia-ml-py") or n == "triton"], (
            f"{kind}: torch pins its own CUDA libraries"
        )
    assert "nvidia-ml-py" in cuda, "the cuda image reads NVML's energy counter (dlbench.energy)"
    for kind, p in (("cpu", cpu), ("cuda", cuda), ("rapids", rapids)):
        assert p["numpy"] == cpu["numpy"] and p["kfp"] == "2.17.0", kind
    proj = project()
    for spec in proj["dependencies"] + proj["optional-dependencies"]["kfp"]:
        req = Requirement(spec)
        if req.name in rapids:
            assert req.specifier.contains(Version(rapids[req.name]), prereleases=True), f"rapids: {spec}"


def test_build_context_leaves_out_local_state():
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", ".dockerignore should ignore everything, then allow what the images install"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed <= {
        "pyproject.toml",
        "README.md",
        "src",
        "components",
        "pipelines",
        "stores",
        "images/*/requirements.txt",
    }
    for local in (".venv", ".git", "runs", ".cache", ".tmp", "tests", "data"):
        assert not any(a == local or a.startswith(local + "/") for a in allowed)


def test_the_image_holds_every_folder_dlbench_installs():
    # a folder left out of the image breaks only in a pod (e.g. no stores/: no s3:// store there)
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {path.split("/")[0] for path in tool["package-dir"].values()}
    assert folders == {"src", "components", "pipelines", "stores"}
    copies = {
        line.split()[1]: line.split()[-1]
        for line in dockerfile_instructions()
        if line.startswith("COPY ") and len(line.split()) == 3
    }  # source -> destination
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {r.strip()[1:].rstrip("/") for r in rules if r.strip().startswith("!")}
    for name in folders:
        assert copies.get(name, "").endswith(f"/{name}"), f"images/Dockerfile does not COPY {name}/"
        assert name in allowed, f".dockerignore leaves out {name}/"
