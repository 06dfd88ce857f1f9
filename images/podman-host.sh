#!/usr/bin/env bash
# Make podman work on a VM like CI's: no Docker engine, cgroups v1 in hybrid mode, low hard ulimits.
# Installs podman (and debootstrap for the local base image) if missing, then applies the two host
# settings ENVIRONMENT.md describes, each only where it is needed. Idempotent; needs root (or sudo).
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
command -v podman >/dev/null || missing+=(podman)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "podman-host: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 1. cgroups v1 hybrid mode without a hugetlb hierarchy: crun fails with "cgroups in hybrid mode not
#    supported". Mount the hugetlb controller where the kernel has it and nothing mounted it.
if [ -d /sys/fs/cgroup/unified ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ] \
   && awk '$1 == "hugetlb" && $4 == 1 {f=1} END {exit !f}' /proc/cgroups \
   && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  echo "podman-host: mounting the hugetlb cgroup controller"
  $SUDO mkdir -p /sys/fs/cgroup/hugetlb
  $SUDO mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi

# 2. podman's default container ulimits (nofile 1048576) above this host's hard limits: crun fails with
#    "setrlimit RLIMIT_NOFILE: Operation not permitted". Default containers to limits the host allows.
conf=/etc/containers/containers.conf
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 1048576 ] && ! grep -qs '^ *default_ulimits' "$conf"; then
  echo "podman-host: default_ulimits nofile=1024:1024, nproc=4096:4096 in $conf"
  $SUDO mkdir -p "$(dirname "$conf")"
  if grep -qs '^\[containers\]' "$conf"; then
    $SUDO sed -i '/^\[containers\]/a default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]' "$conf"
  else
    printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' | $SUDO tee -a "$conf" >/dev/null
  fi
fi
echo "podman-host: $(podman --version)"
