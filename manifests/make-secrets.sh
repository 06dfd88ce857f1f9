#!/usr/bin/env bash
# Write the env files overlays/cluster turns into Secrets, with random keys. Keeps existing files.
#   manifests/make-secrets.sh [OVERLAY_DIR]      default: manifests/overlays/cluster
set -euo pipefail
dir=${1:-$(dirname "$0")/overlays/cluster}
umask 077
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(30))'; }
write() {  # file, then KEY=VALUE lines
  local file=$dir/$1; shift
  if [ -e "$file" ]; then echo "kept $file"; return; fi
  printf '%s\n' "$@" > "$file"
  echo "wrote $file"
}
write minio-root.env "MINIO_ROOT_USER=dlbench-admin" "MINIO_ROOT_PASSWORD=$(rand)"
write s3.env "accesskey=dlbench-pipeline" "secretkey=$(rand)"
