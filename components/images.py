"""Container image names and tags: the one place the Makefile, the KFP components and the docs take them from.

No kfp import here, so the Makefile (``python3 components/images.py cpu``), the tests and the
components all read the same strings. The registry prefix is overridable so a user pushes to their own:

    DLBENCH_REGISTRY=registry.example.com/me make images      # builds registry.example.com/me/dlbench-cpu:0.1.0
    DLBENCH_IMAGE_TAG=dev make image-cpu                      # another tag

The tag follows dlbench's version (a test checks they agree). KFP's cache key contains the image
string, so a new release must come with a new tag, never a moved one.
"""

from __future__ import annotations

import os
import sys

REGISTRY_ENV = "DLBENCH_REGISTRY"
TAG_ENV = "DLBENCH_IMAGE_TAG"
DEFAULT_REGISTRY = "ghcr.io/dlbench"
TAG = "0.1.0"

# kind -> (image name, Dockerfile under images/, what it is for)
KINDS = {
    "cpu": ("dlbench-cpu", "images/cpu/Dockerfile", "torch (CPU), onnxruntime, scikit-learn: every step on the CPU"),
    "cuda": ("dlbench-cuda", "images/cuda/Dockerfile", "torch (CUDA 13) + onnxruntime-gpu: train, profile, onnx on a GPU"),
    "rapids": ("dlbench-rapids", "images/rapids/Dockerfile", "cuML (CUDA 13): the SVM step on a GPU"),
}


def registry() -> str:
    """The registry prefix: $DLBENCH_REGISTRY, else ghcr.io/dlbench."""
    return (os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY).rstrip("/")


def tag() -> str:
    """The image tag: $DLBENCH_IMAGE_TAG, else dlbench's version."""
    return os.environ.get(TAG_ENV) or TAG


def image(kind: str) -> str:
    """Full image reference for a kind ("cpu", "cuda", "rapids"), e.g. ghcr.io/dlbench/dlbench-cpu:0.1.0."""
    if kind not in KINDS:
        raise KeyError(f"unknown image kind {kind!r}; known: {', '.join(KINDS)}")
    return f"{registry()}/{KINDS[kind][0]}:{tag()}"


def dockerfile(kind: str) -> str:
    """Path of the kind's Dockerfile, relative to the repository root."""
    image(kind)
    return KINDS[kind][1]


# Resolved once at import: what the components use as base_image.
IMAGES = {kind: image(kind) for kind in KINDS}
CPU_IMAGE = IMAGES["cpu"]
CUDA_IMAGE = IMAGES["cuda"]
RAPIDS_IMAGE = IMAGES["rapids"]


if __name__ == "__main__":  # used by the Makefile: python3 components/images.py cpu [--dockerfile]
    args = sys.argv[1:]
    if not args or args[0] not in KINDS:
        sys.exit(f"usage: python3 components/images.py {{{'|'.join(KINDS)}}} [--dockerfile]")
    print(dockerfile(args[0]) if "--dockerfile" in args else image(args[0]))
