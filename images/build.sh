#!/usr/bin/env bash
# Build one image with docker or podman, named as components/images.py says.
#   images/build.sh KIND [EXTRA BUILD FLAGS...]       KIND: cpu, cuda, rapids
# Environment: ENGINE (docker|podman; default: whichever works), BASE_IMAGE and PIP_EXTRA_INDEX_URL
# (passed as build args when set), DLBENCH_REGISTRY / DLBENCH_IMAGE_TAG (the name, see images.py).
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?usage: images/build.sh cpu|cuda|rapids [build flags]}; shift
ENGINE=$(images/engine.sh)
IMAGE=$(python3 components/images.py "$KIND")
DOCKERFILE=$(python3 components/images.py "$KIND" --dockerfile)
args=(--build-arg "GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || true)")
if [ -n "${BASE_IMAGE:-}" ]; then args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"); fi
if [ -n "${PIP_EXTRA_INDEX_URL+set}" ]; then args+=(--build-arg "PIP_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL"); fi
echo "images: $ENGINE build $IMAGE from $DOCKERFILE"
start=$(date +%s)
"$ENGINE" build -f "$DOCKERFILE" -t "$IMAGE" "${args[@]}" "$@" .
echo "images: built $IMAGE in $(( $(date +%s) - start )) s"
