#!/usr/bin/env bash
# Build one image with docker or podman from images/Dockerfile, named as components/images.py says and
# with the kind's build args from there (python3 components/images.py KIND --build-args lists them).
#   images/build.sh KIND [EXTRA BUILD FLAGS...]       KIND: cpu, cuda, rapids
# Environment: ENGINE (docker|podman; default: whichever works), BASE_IMAGE and PIP_EXTRA_INDEX_URL
# (when set, instead of the kind's), DLBENCH_REGISTRY / DLBENCH_IMAGE_TAG (the name, see images.py).
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: images/build.sh cpu|cuda|rapids [build flags]}; shift
ENGINE=$(images/engine.sh)
IMAGE=$(python3 components/images.py "$KIND")
DOCKERFILE=$(python3 components/images.py "$KIND" --dockerfile)
BUILD_ARGS=$(python3 components/images.py "$KIND" --build-args)
args=(--build-arg "GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || true)")
while IFS= read -r arg; do args+=(--build-arg "$arg"); done <<< "$BUILD_ARGS"
echo "images: $ENGINE build $IMAGE from $DOCKERFILE"
start=$(date +%s)
"$ENGINE" build -f "$DOCKERFILE" -t "$IMAGE" "${args[@]}" "$@" .
echo "images: built $IMAGE in $(( $(date +%s) - start )) s"
