#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: dip, OpenCV and libvips on the same 12-megapixel images, in the same run: one
# synthetic (Debian python3-skimage's astronaut scaled up, with noise) and two real photos from
# Debian wallpaper packages (bench/fetch-photos.sh downloads them into .cache/bench, git-ignored),
# each in RGB and in gray; then a table of MP/s and the ratios dip/OpenCV (one thread and all
# threads) and dip/libvips.
# Usage: bench/run.sh [BUILD_DIR]   (RUNS=5 by default; IMAGES="synthetic kleiber dune" by
#        default; OPS=a,b,c to time only some operations; STAT=min to rate each op by its
#        fastest run instead of the median, steadier on a loaded machine; VIPS=0 to leave out
#        libvips, whose slow operations take most of the time)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${RUNS:-5}
images=${IMAGES:-synthetic kleiber dune}
out=$build/bench
mkdir -p "$out"
# libvips is only needed for the comparison: install it here, not for users of dip.
tools/install-deps.sh build
if ! dpkg-query -W -f='${Status}' libvips-dev 2>/dev/null | grep -q "install ok installed"; then
  ${SUDO:-$( [ "$(id -u)" -ne 0 ] && echo sudo )} apt-get install -y -q --no-install-recommends libvips-dev >/dev/null || true
fi
[ -f "$out/synthetic.png" ] || /usr/bin/python3 bench/make_photo.py "$out/synthetic.png" "$out/synthetic-gray.png"
photos=$(bench/fetch-photos.sh)
# Every operation that means something on a gray image (hsv and gray are colour-only).
gray_ops=invert,linear,brightness,threshold,otsu,equalize,stretch,box,gaussian,median,bilateral
gray_ops=$gray_ops,sobel,sharpen,canny,resize,flip,rotate,crop
rgb_ops=${OPS:-}
if [ -n "${OPS:-}" ]; then gray_ops=$OPS; fi
vips=""
if [ "${VIPS:-1}" != 0 ] && pkg-config --exists vips; then
  cc -O2 -o "$out/vips-bench" bench/vips-bench.c $(pkg-config --cflags --libs vips)
  vips=$out/vips-bench
fi
csv=$out/results.csv
: > "$csv"
for name in $images; do
  if [ "$name" = synthetic ]; then base=$out/$name; else base=$photos/$name; fi
  echo "== $name: dip, OpenCV${vips:+, libvips}"
  "$build/dip" bench --input "$base.png" --suite "$name" --runs "$runs" ${rgb_ops:+--ops $rgb_ops} \
    | tail -n +2 | tee -a "$csv"
  "$build/dip" bench --input "$base-gray.png" --suite "$name-gray" --runs "$runs" \
    --ops "$gray_ops" | tail -n +2 | tee -a "$csv"
  /usr/bin/python3 bench/opencv_bench.py "$base.png" "$name" "$runs" ${rgb_ops:+$rgb_ops} | tee -a "$csv"
  /usr/bin/python3 bench/opencv_bench.py "$base-gray.png" "$name-gray" "$runs" "$gray_ops" \
    | tee -a "$csv"
  if [ -n "$vips" ]; then
    "$vips" "$base.png" "$name" "$runs" | tee -a "$csv"
  fi
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/report.py "$csv" "${STAT:-median}"
# With an OpenCL GPU (dip bench's default --device auto), the device rows get their own table.
if grep -q ',dip-opencl,' "$csv"; then
  echo
  /usr/bin/python3 bench/opencl_report.py "$csv"
fi
echo
echo "== codecs (dip, OpenCV, libvips)"
/usr/bin/python3 bench/codecs.py "$build/dip" "$out/codecs" "${CODEC_RUNS:-3}"
echo
echo "== batch (dip process, OpenCV)"
/usr/bin/python3 bench/batch.py "$build/dip" --work "$out" --rounds "${BATCH_ROUNDS:-5}"
