#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages dip needs that are missing, with sudo only when not root.
# Usage: tools/install-deps.sh [build|test|all]   (default: all)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libpng-dev libjpeg62-turbo-dev libwebp-dev
            libtiff-dev libgif-dev zlib1g-dev libsqlite3-dev sqlite3 libmicrohttpd-dev
            libgnutls28-dev openmpi-bin libopenmpi-dev nettle-dev
            libcurl4-openssl-dev
            ocl-icd-opencl-dev opencl-c-headers libdeflate-dev libisal-dev
            python3 python3-yaml)  # python3-yaml: docs/openapi.yaml is compiled in as JSON
test_pkgs=(python3 python3-opencv python3-numpy python3-skimage clang libclang-rt-14-dev iproute2
           pocl-opencl-icd clinfo)
# Added by the parts that need them (codec conformance, web page tests, ...):
extra_test_pkgs=()
[ -f tools/deps-extra.txt ] && mapfile -t extra_test_pkgs < <(grep -v '^#' tools/deps-extra.txt | grep .)

want=("${build_pkgs[@]}")
case "${1:-all}" in
  build) ;;
  test|all) want+=("${test_pkgs[@]}" "${extra_test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

# Node.js and npm (web page, OpenAPI, object storage and deployment tests): Debian's only when
# none is on PATH, since a Node.js installed otherwise (bundling npm) conflicts with Debian's npm.
case "${1:-all}" in
  test|all) command -v npm >/dev/null 2>&1 || want+=(nodejs npm) ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
