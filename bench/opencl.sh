#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The OpenCL backend against the CPU path on the same 12-megapixel photo (RGB and gray), in the
# same run, and a table of MP/s per op: CPU (all threads), OpenCL with host<->device transfers
# and OpenCL kernels only. On a machine with a GPU, `auto` picks it; without one, PoCL's CPU
# device is used (figures for information only).
# Usage: bench/opencl.sh [BUILD_DIR]   (RUNS=5 by default; OPS=a,b,c to restrict)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${RUNS:-5}
out=$build/bench
mkdir -p "$out"
"$build/dip" version | grep '^opencl:' || true
[ -f "$out/photo.png" ] || /usr/bin/python3 bench/make_photo.py "$out/photo.png" "$out/photo-gray.png"
csv=$out/opencl.csv
ops=()
[ -n "${OPS:-}" ] && ops=(--ops "$OPS")
"$build/dip" bench --device opencl --input "$out/photo.png" --runs "$runs" "${ops[@]}" \
  | tee "$csv"
"$build/dip" bench --device opencl --input "$out/photo-gray.png" --runs "$runs" --suite gray \
  --ops "${OPS:-threshold,otsu,equalize,canny,box,gaussian,median,sobel}" | tail -n +2 | tee -a "$csv"
echo
/usr/bin/python3 bench/opencl_report.py "$csv"
