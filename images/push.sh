#!/usr/bin/env bash
# Push the images to your registry, named as components/images.py says (the names compile/submit use):
#   make push REGISTRY=host[:port]/namespace [TAG=...] [KINDS="cpu cuda rapids"] [INSECURE=1] [REBUILD=1]
#   DLBENCH_REGISTRY=host[:port]/namespace [DLBENCH_IMAGE_TAG=...] images/push.sh [KIND...]
# For each kind: the image under its target name if the engine has it; else the one `make images` (or
# images/ci-build.sh) built under the default name, tagged; else built with images/build.sh. REBUILD=1
# always builds. A note says when the image was built from another commit than this checkout's.
# INSECURE=1: podman push --tls-verify=false (a registry on plain HTTP or with a self-signed certificate);
# Docker's engine decides that itself (insecure-registries in /etc/docker/daemon.json).
# Log in first where the registry needs it (docker login / podman login HOST).
# Prints each image's digest as the registry answered it, and the compile command that pins them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- cpu cuda rapids
if [ -z "${DLBENCH_REGISTRY:-}" ]; then
  echo "push: no registry: make push REGISTRY=host[:port]/namespace (or set DLBENCH_REGISTRY)" >&2
  exit 2
fi
ENGINE=$(images/engine.sh)
HEAD=$(git rev-parse HEAD 2>/dev/null || true)
flags=()
if [ -n "${INSECURE:-}" ] && [ "${INSECURE}" != 0 ]; then
  if [ "$ENGINE" = podman ]; then
    flags+=(--tls-verify=false)
  else
    echo "push: INSECURE=1 applies to podman; Docker reads insecure-registries from its daemon.json" >&2
  fi
fi
pinned=()
for KIND in "$@"; do
  IMAGE=$(python3 components/images.py "$KIND")
  DEFAULT=$(python3 components/images.py "$KIND" --default)
  if [ -n "${REBUILD:-}" ] || ! "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
    if [ -z "${REBUILD:-}" ] && [ "$DEFAULT" != "$IMAGE" ] && "$ENGINE" image inspect "$DEFAULT" >/dev/null 2>&1; then
      echo "push: tagging $DEFAULT as $IMAGE"
      "$ENGINE" tag "$DEFAULT" "$IMAGE"
    else
      images/build.sh "$KIND"
    fi
  fi
  commit=$("$ENGINE" image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" \
           | sed -n 's/^DLBENCH_GIT_COMMIT=//p')
  if [ -n "$HEAD" ] && [ "$commit" != "$HEAD" ]; then
    echo "push: note: $IMAGE was built from commit ${commit:-unknown}, this checkout is at $HEAD" \
         "(REBUILD=1 make push ... rebuilds it)"
  fi
  out=$(mktemp)
  if [ "$ENGINE" = podman ]; then
    podman push "${flags[@]}" --digestfile "$out" "$IMAGE"
    digest=$(cat "$out")
  else
    docker push "$IMAGE" | tee "$out"
    digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' "$out" | tail -1)
  fi
  rm -f "$out"
  echo "push: $IMAGE = ${IMAGE%:*}@$digest"
  pinned+=("${IMAGE%:*}@$digest")
done
tag=$(python3 -c 'import sys; sys.path.insert(0, "components"); import images; print(images.tag())')
echo "push: done. Compile a pipeline that runs exactly these images:"
echo "  DLBENCH_REGISTRY=$DLBENCH_REGISTRY DLBENCH_IMAGE_TAG=$tag dlbench compile --spec quick --pin-digests --check"
