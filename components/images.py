"""Container image names, tags and build args: the one place the Makefile, the KFP components and the docs
take them from. One Dockerfile (images/Dockerfile) builds every kind; a kind is the build args it gets
(``KINDS``, ``build_args``; ``python3 components/images.py cuda --build-args`` prints them for
images/build.sh).

No kfp import here, so the Makefile (``python3 components/images.py cpu``), the tests and the
components all read the same strings. The registry prefix is overridable so a user pushes to their own:

    DLBENCH_REGISTRY=registry.example.com/me make images    # builds registry.example.com/me/dlbench-cpu:0.1.0
    DLBENCH_IMAGE_TAG=dev make image-cpu                    # another tag
    make push REGISTRY=registry.example.com/me [TAG=dev]    # the same two names, pushed (images/push.sh)
    DLBENCH_REGISTRY=registry.example.com/me dlbench compile --pin-digests   # the pipeline names them

``dlbench compile``/``submit`` read the two variables when they compile (not only at import), so the
YAML names the images the environment names; ``--pin-digests`` then replaces each tag by the digest the
registry holds (``pipelines/registry.py``).

The tag follows dlbench's version (a test checks they agree). KFP's cache key contains the image
string, so a new release must come with a new tag, never a moved one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

REGISTRY_ENV = "DLBENCH_REGISTRY"
TAG_ENV = "DLBENCH_IMAGE_TAG"
DEFAULT_REGISTRY = "ghcr.io/dlbench"
TAG = "0.1.0"

DOCKERFILE = "images/Dockerfile"  # one for every kind; a kind is the build args it gets (build_args)


@dataclass(frozen=True)
class Kind:
    """One image: its name, what it runs, and what images/Dockerfile builds it from."""

    name: str
    about: str
    base_image: str  # BASE_IMAGE: pinned, never :latest
    pip_index: str = ""  # PIP_EXTRA_INDEX_URL: where pip looks besides PyPI (space-separated)
    left_out: tuple[
        str, ...
    ] = ()  # LEFT_OUT: dlbench requirements the image does not install (images/lock.py)


KINDS = {
    # Any Debian/Ubuntu-like base with python3.11 + venv works (CI uses images/debian-base.sh's, as it cannot
    # pull from a registry). PyTorch's CPU index serves torch 2.14.1+cpu / torchvision 0.29.1+cpu, which sort
    # above PyPI's CUDA builds of the same versions: the image stays free of ~4 GB of CUDA libraries. CI,
    # which cannot reach that index, points PIP_EXTRA_INDEX_URL at local wheel indexes, gets the CUDA build.
    "cpu": Kind(
        "dlbench-cpu",
        "torch (CPU), onnxruntime, scikit-learn: every step on the CPU",
        "python:3.11-slim-bookworm",
        pip_index="https://download.pytorch.org/whl/cpu",
    ),
    # Any Ubuntu/Debian base with CUDA 13 whose apt has python3 (>= 3.11) and python3-venv; torch's CUDA
    # libraries come from PyPI with torch's own exact pins. onnxruntime-gpu provides onnxruntime's module.
    "cuda": Kind(
        "dlbench-cuda",
        "torch (CUDA 13) + onnxruntime-gpu: train, profile, onnx on a GPU",
        "nvidia/cuda:13.0.2-runtime-ubuntu24.04",
        left_out=("onnxruntime",),
    ),
    # Any Ubuntu/Debian base with CUDA 13 whose apt has python3 (3.11 to 3.14) and python3-venv; cuML's CUDA
    # libraries come as pip packages. Only `dlbench svm` (and data) run here.
    "rapids": Kind(
        "dlbench-rapids",
        "cuML (CUDA 13): the SVM step on a GPU",
        "nvidia/cuda:13.0.2-base-ubuntu24.04",
        left_out=("torch", "torchvision", "onnxruntime"),
    ),
}


def _env(name: str, env_name: str) -> str | None:
    """A variable as dlbench.settings parsed it (one line on a bad value); where dlbench is not installed
    (images/build.sh and push.sh run this file with the system python3, before any image or venv exists),
    the variable as it is: the image tool refuses a bad reference itself."""
    try:
        from dlbench.settings import settings
    except ImportError:
        return os.environ.get(env_name) or None
    return getattr(settings(), name)


def registry() -> str:
    """The registry prefix: $DLBENCH_REGISTRY, else ghcr.io/dlbench."""
    return (_env("registry", REGISTRY_ENV) or DEFAULT_REGISTRY).rstrip("/")


def tag() -> str:
    """The image tag: $DLBENCH_IMAGE_TAG, else dlbench's version."""
    return _env("image_tag", TAG_ENV) or TAG


def image(kind: str, registry_prefix: str | None = None, image_tag: str | None = None) -> str:
    """Full image reference for a kind ("cpu", "cuda", "rapids"), e.g. ghcr.io/dlbench/dlbench-cpu:0.1.0.

    ``registry_prefix`` / ``image_tag`` override the environment's (``$DLBENCH_REGISTRY``,
    ``$DLBENCH_IMAGE_TAG``).
    """
    if kind not in KINDS:
        raise KeyError(f"unknown image kind {kind!r}; known: {', '.join(KINDS)}")
    prefix = (registry_prefix or registry()).rstrip("/")
    return f"{prefix}/{KINDS[kind].name}:{image_tag or tag()}"


def current() -> dict[str, str]:
    """kind -> reference as the environment names it now (``IMAGES`` is what it named at import)."""
    return {kind: image(kind) for kind in KINDS}


def dockerfile(kind: str) -> str:
    """Path of the kind's Dockerfile, relative to the repository root (the same for every kind)."""
    image(kind)
    return DOCKERFILE


def build_args(kind: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The build args images/Dockerfile takes for a kind (images/build.sh passes them).

    ``$BASE_IMAGE`` and ``$PIP_EXTRA_INDEX_URL`` in ``environ`` (default: the environment) replace the kind's;
    ``PIP_EXTRA_INDEX_URL`` set to nothing means PyPI only.
    """
    image(kind)
    env = os.environ if environ is None else environ
    spec = KINDS[kind]
    return {
        "KIND": kind,
        "BASE_IMAGE": env.get("BASE_IMAGE") or spec.base_image,
        "PIP_EXTRA_INDEX_URL": env.get("PIP_EXTRA_INDEX_URL", spec.pip_index),
        "LEFT_OUT": " ".join(spec.left_out),
    }


# Resolved once at import: what the components use as base_image.
IMAGES = {kind: image(kind) for kind in KINDS}
CPU_IMAGE = IMAGES["cpu"]
CUDA_IMAGE = IMAGES["cuda"]
RAPIDS_IMAGE = IMAGES["rapids"]


if (
    __name__ == "__main__"
):  # used by the Makefile: python3 components/images.py cpu [--dockerfile|--default|--build-args]
    args = sys.argv[1:]
    if not args or args[0] not in KINDS:
        sys.exit(
            f"usage: python3 components/images.py {{{'|'.join(KINDS)}}} [--dockerfile|--default|--build-args]"
        )
    if "--dockerfile" in args:
        print(dockerfile(args[0]))
    elif "--default" in args:  # the name `make images` gives it without DLBENCH_REGISTRY (images/push.sh)
        print(image(args[0], DEFAULT_REGISTRY))
    elif "--build-args" in args:  # NAME=VALUE lines, one --build-arg each (images/build.sh)
        print("\n".join(f"{name}={value}" for name, value in build_args(args[0]).items()))
    else:
        print(image(args[0]))
