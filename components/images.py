"""Container image names and tags: the one place the Makefile, the KFP components and the docs take them from.

No kfp import here, so the Makefile (``python3 components/images.py cpu``), the tests and the
components all read the same strings. The registry prefix is overridable so a user pushes to their own:

    DLBENCH_REGISTRY=registry.example.com/me make images      # builds registry.example.com/me/dlbench-cpu:0.1.0
    DLBENCH_IMAGE_TAG=dev make image-cpu                      # another tag
    make push REGISTRY=registry.example.com/me [TAG=dev]      # the same two names, pushed (images/push.sh)
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


def image(kind: str, registry_prefix: str | None = None, image_tag: str | None = None) -> str:
    """Full image reference for a kind ("cpu", "cuda", "rapids"), e.g. ghcr.io/dlbench/dlbench-cpu:0.1.0.

    ``registry_prefix`` / ``image_tag`` override the environment's (``$DLBENCH_REGISTRY``, ``$DLBENCH_IMAGE_TAG``).
    """
    if kind not in KINDS:
        raise KeyError(f"unknown image kind {kind!r}; known: {', '.join(KINDS)}")
    prefix = (registry_prefix or registry()).rstrip("/")
    return f"{prefix}/{KINDS[kind][0]}:{image_tag or tag()}"


def current() -> dict[str, str]:
    """kind -> reference as the environment names it now (``IMAGES`` is what it named at import)."""
    return {kind: image(kind) for kind in KINDS}


def dockerfile(kind: str) -> str:
    """Path of the kind's Dockerfile, relative to the repository root."""
    image(kind)
    return KINDS[kind][1]


# Resolved once at import: what the components use as base_image.
IMAGES = {kind: image(kind) for kind in KINDS}
CPU_IMAGE = IMAGES["cpu"]
CUDA_IMAGE = IMAGES["cuda"]
RAPIDS_IMAGE = IMAGES["rapids"]


if __name__ == "__main__":  # used by the Makefile: python3 components/images.py cpu [--dockerfile|--default]
    args = sys.argv[1:]
    if not args or args[0] not in KINDS:
        sys.exit(f"usage: python3 components/images.py {{{'|'.join(KINDS)}}} [--dockerfile|--default]")
    if "--dockerfile" in args:
        print(dockerfile(args[0]))
    elif "--default" in args:  # the name `make images` gives it without DLBENCH_REGISTRY (images/push.sh)
        print(image(args[0], DEFAULT_REGISTRY))
    else:
        print(image(args[0]))
