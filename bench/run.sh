#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: dip, OpenCV and libvips on the same 12-megapixel photo, in the same run, then a
# table of MP/s and the ratios dip/OpenCV (one thread and all threads) and dip/libvips.
# Usage: bench/run.sh [BUILD_DIR]   (RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${RUNS:-5}
out=$build/bench
mkdir -p "$out"
# libvips is only needed for the comparison: install it here, not for users of dip.
tools/install-deps.sh build
if ! dpkg-query -W -f='${Status}' libvips-dev 2>/dev/null | grep -q "install ok installed"; then
  ${SUDO:-$( [ "$(id -u)" -ne 0 ] && echo sudo )} apt-get install -y -q --no-install-recommends libvips-dev >/dev/null || true
fi
/usr/bin/python3 bench/make_photo.py "$out/photo.png" "$out/photo-gray.png"
csv=$out/results.csv
: > "$csv"
echo "== dip"
"$build/dip" bench --input "$out/photo.png" --runs "$runs" | tee -a "$csv"
"$build/dip" bench --input "$out/photo-gray.png" --runs "$runs" --suite gray \
  --ops threshold,otsu,equalize,canny,box,gaussian,median,sobel | tail -n +2 | tee -a "$csv"
echo "== OpenCV"
/usr/bin/python3 bench/opencv_bench.py "$out/photo.png" ops "$runs" | tee -a "$csv"
/usr/bin/python3 bench/opencv_bench.py "$out/photo-gray.png" gray "$runs" \
  threshold,otsu,equalize,canny,box,gaussian,median,sobel | tee -a "$csv"
if pkg-config --exists vips; then
  echo "== libvips"
  cc -O2 -o "$out/vips-bench" bench/vips-bench.c $(pkg-config --cflags --libs vips)
  "$out/vips-bench" "$out/photo.png" ops "$runs" | tee -a "$csv"
fi
echo
/usr/bin/python3 bench/report.py "$csv"
echo
echo "== codecs (dip, OpenCV, libvips)"
/usr/bin/python3 bench/codecs.py "$build/dip" "$out/codecs" "${CODEC_RUNS:-3}"
