#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds dip's container image with podman from deploy/container/Containerfile.
# Usage: deploy/container/build.sh [IMAGE] [TARGET]   (default localhost/dip:latest runtime)
#   TARGET runtime: the service and CLI; mpi: the same plus sshd, for the MPI Operator's pods
#   DIP_IMAGE_BASE  the base image; unset: make one locally with make-base.sh (debootstrap),
#                   cached in podman's store (localhost/dip-base:bookworm)
# The build context is the repository (less what containerignore leaves out). Layers are
# reused between runs: the build packages until tools/install-deps.sh changes, the runtime
# packages until the list of libraries dip links changes; ccache keeps compiled objects.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${1:-localhost/dip:latest}
target=${2:-runtime}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
base=${DIP_IMAGE_BASE:-}
if [ -z "$base" ]; then
  base=localhost/dip-base:bookworm
  "$here/make-base.sh" "$base"
fi
# --format docker: the OCI format has no HEALTHCHECK; --network host: apt reaches the archive.
build() {
  podman build --format docker --network host --layers \
    --ignorefile "$here/containerignore" \
    --build-arg BASE="$base" -f "$here/Containerfile" "$@" "$repo"
}
# The build stage gets a name too (the second build reuses it), so that pruning the untagged
# images each rebuild leaves behind (old sources, old objects) keeps the current layer cache.
build --target build -t localhost/dip-build:cache
build --target "$target" -t "$image"
podman image prune -f >/dev/null
