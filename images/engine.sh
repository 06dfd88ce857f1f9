#!/usr/bin/env bash
# Print the container engine to use: $ENGINE if set, else docker if its daemon answers, else podman.
set -euo pipefail
if [ -n "${ENGINE:-}" ]; then echo "$ENGINE"; exit 0; fi
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; exit 0; fi
if command -v podman >/dev/null; then echo podman; exit 0; fi
echo "images: no container engine: install Docker or podman (on Debian as root: images/podman-host.sh)" >&2
exit 2
