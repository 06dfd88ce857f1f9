#!/usr/bin/env bash
# Make a local Debian 12 + Python 3.11 base image for machines that cannot pull from a registry (CI here).
# images/Dockerfile takes it as --build-arg BASE_IMAGE=...; on a normal machine the public
# python:3.11-slim is used instead and this script is not needed.
#   images/debian-base.sh [IMAGE]       default IMAGE: localhost/debian-py:bookworm
# The root filesystem is cached as .cache/debian-py-bookworm.tar (gitignored), so a second run in the
# same clone imports it again instead of bootstrapping; an image already in the engine is kept as is.
set -euo pipefail
ENGINE=${ENGINE:-podman}
IMAGE=${1:-localhost/debian-py:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE_DIR=${CACHE_DIR:-.cache}
TARBALL="$CACHE_DIR/debian-py-bookworm.tar"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

if $ENGINE image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "debian-base: $IMAGE already present"
  exit 0
fi
if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { echo "debian-base: debootstrap is missing (apt-get install debootstrap, or run images/podman-host.sh)" >&2; exit 2; }
  mkdir -p "$CACHE_DIR"
  rootfs=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  trap '$SUDO rm -rf "$rootfs"' EXIT
  echo "debian-base: debootstrap bookworm (minbase + python3, python3-venv, ca-certificates) from $MIRROR"
  $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$MIRROR" > "$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  $SUDO tar -C "$rootfs" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
fi
echo "debian-base: importing $TARBALL as $IMAGE"
$ENGINE import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "debian-base: $IMAGE ready"
