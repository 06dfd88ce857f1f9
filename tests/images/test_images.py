"""The images' definitions: names from one module, Dockerfiles that follow the rules, pinned requirements.

These run everywhere in seconds; tests/images/test_container.py builds the cpu image and runs steps in it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import dlbench
from components import images

ROOT = Path(__file__).resolve().parents[2]


def pins(kind: str) -> dict[str, str]:
    out = {}
    for line in (ROOT / "images" / kind / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and not re.search(r"[<>=!~*,; ]", version), f"{kind}: {line!r} is not pinned with =="
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
    out = subprocess.run([sys.executable, "components/images.py", "rapids"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "localhost/dlbench-rapids:" + images.tag()
    bad = subprocess.run([sys.executable, "components/images.py", "gpu"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "usage" in bad.stderr
    dry = subprocess.run(["make", "-n", "images"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert [line.split()[-1] for line in dry.stdout.splitlines() if "images/build.sh" in line] == list(images.KINDS)


@pytest.mark.parametrize("kind", list(images.KINDS))
def test_dockerfile_rules(kind):
    text = (ROOT / images.dockerfile(kind)).read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert instructions[0].startswith("ARG BASE_IMAGE="), "the base image must be a build argument"
    default = instructions[0].split("=", 1)[1]
    assert ":" in default and not default.endswith(":latest"), f"pin the default base image: {default}"
    assert instructions[1] == "FROM ${BASE_IMAGE}"
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (Kubernetes runAsNonRoot needs a number)"
    assert "PIP_NO_CACHE_DIR=1" in text
    for banned in ("build-essential", "gcc", "g++", ":latest", "pip install --upgrade"):
        assert banned not in text, f"{kind}: {banned!r} in the Dockerfile"
    assert f"images/{kind}/requirements.txt" in text
    assert "--no-deps" in text, "dlbench must install without pulling unpinned dependencies"


def test_requirements_pin_what_dlbench_needs():
    """Every dependency of dlbench[kfp] is pinned in the cpu image, at a version pyproject allows."""
    proj = project()
    cpu = pins("cpu")
    for spec in proj["dependencies"] + proj["optional-dependencies"]["kfp"]:
        req = Requirement(spec)
        name = req.name.lower()
        assert name in cpu, f"{name} is not in images/cpu/requirements.txt (run images/lock.py)"
        assert req.specifier.contains(Version(cpu[name]), prereleases=True), f"{name}=={cpu[name]} breaks {spec}"


def test_gpu_images_swap_in_their_gpu_packages():
    cpu, cuda, rapids = pins("cpu"), pins("cuda"), pins("rapids")
    assert "onnxruntime" in cpu and "onnxruntime" not in cuda
    assert Version(cuda["onnxruntime-gpu"]) >= Version("1.27"), "onnxruntime-gpu < 1.27 is the CUDA 12 line"
    assert cuda["torch"] == cpu["torch"] and cuda["torchvision"] == cpu["torchvision"]
    assert "torch" not in rapids and "onnxruntime" not in rapids and rapids["cuml-cu13"].startswith("26.10")
    assert Version(rapids["numpy"]) < Version("2.5"), "cuML 26.10 calls np.row_stack, gone in numpy 2.5"
    for kind, p in (("cpu", cpu), ("cuda", cuda)):
        assert not [n for n in p if n.startswith("nvidia-") or n == "triton"], f"{kind}: torch pins its own CUDA libraries"
    for kind, p in (("cpu", cpu), ("cuda", cuda), ("rapids", rapids)):
        assert p["numpy"] == cpu["numpy"] and p["kfp"] == "2.17.0", kind
    proj = project()
    for spec in proj["dependencies"] + proj["optional-dependencies"]["kfp"]:
        req = Requirement(spec)
        if req.name in rapids:
            assert req.specifier.contains(Version(rapids[req.name]), prereleases=True), f"rapids: {spec}"


def test_build_context_leaves_out_local_state():
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", ".dockerignore should ignore everything, then allow what the images install"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert allowed <= {"pyproject.toml", "README.md", "src", "components", "pipelines", "stores",
                       "images/*/requirements.txt"}
    for local in (".venv", ".git", "runs", ".cache", ".tmp", "tests", "data"):
        assert not any(a == local or a.startswith(local + "/") for a in allowed)
