#!/usr/bin/env bash
# Build an image the way CI does, on a machine that cannot pull from a registry (as CI's cannot):
#   1. podman with this host's settings (images/podman-host.sh; skipped where Docker's engine answers),
#   2. a Debian 12 + Python 3.11 base made with debootstrap (images/debian-base.sh, cached in .cache/),
#   3. this machine's local wheel indexes, where it has them ($LOCAL_WHEEL_INDEXES, podman only:
#      mounted into the build), so torch and its CUDA libraries come from disk; PyPI for the rest.
#   images/ci-build.sh [KIND]        default: cpu; needs root (or sudo) for steps 1 and 2
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-cpu}
ENGINE=$(images/engine.sh 2>/dev/null || true)
if [ "$ENGINE" != docker ]; then
  images/podman-host.sh
  ENGINE=podman
fi
export ENGINE
export BASE_IMAGE=${BASE_IMAGE:-localhost/debian-py:bookworm}
if [ "$BASE_IMAGE" = localhost/debian-py:bookworm ]; then
  images/debian-base.sh "$BASE_IMAGE"
fi
flags=(--network=host)
if [ "$ENGINE" = podman ]; then
  # the host's CA bundle (it holds this network's TLS proxy CA, if any) for pip's downloads from PyPI
  flags+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  indexes=""
  for dir in ${LOCAL_WHEEL_INDEXES-/opt/pypi /opt/pypi-more}; do
    if [ -d "$dir/simple" ]; then
      flags+=(-v "$dir:$dir:ro")
      indexes+="file://$dir/simple "
    fi
  done
  if [ -n "$indexes" ]; then export PIP_EXTRA_INDEX_URL="${indexes% }"; fi
fi
exec images/build.sh "$KIND" "${flags[@]}"
