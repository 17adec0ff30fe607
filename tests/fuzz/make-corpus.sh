#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the seed corpora of the fuzz targets in OUTDIR/<format>/ (nothing here is committed):
# small valid and hostile files from the test generators (dip-gen-seeds), small images encoded by
# OpenCV (Debian python3-opencv) in every format it writes, and the small third-party files of the
# conformance cache when tools/fetch-testdata.sh has filled it.
# Usage: make-corpus.sh DIP_GEN_SEEDS OUTDIR
set -eu
gen=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
cache=${DIP_TEST_CACHE:-$here/../../.cache}
mkdir -p "$out"
"$gen" "$out"

/usr/bin/python3 - "$out" <<'PY'
import os, sys
import numpy as np
import cv2
out = sys.argv[1]
rng = np.random.default_rng(7)
imgs = {"rgb": rng.integers(0, 256, (13, 17, 3), dtype=np.uint8),
        "gray": rng.integers(0, 256, (9, 11), dtype=np.uint8),
        "rgba": rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)}
jobs = [("png", ".png", []), ("jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 80]),
        ("jpeg", ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        ("webp", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
        ("webp", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless
        ("tiff", ".tif", []), ("bmp", ".bmp", []), ("pnm", ".pnm", [])]
for i, (fmt, ext, params) in enumerate(jobs):
    os.makedirs(os.path.join(out, fmt), exist_ok=True)
    for name, img in imgs.items():
        if ext in (".jpg", ".pnm", ".bmp") and name == "rgba":
            continue
        if ext == ".pnm":
            ext = ".ppm" if img.ndim == 3 else ".pgm"
        path = os.path.join(out, fmt, "cv2-%d-%s%s" % (i, name, ext))
        cv2.imwrite(path, img, params)
        ext = ".pnm" if ext in (".ppm", ".pgm") else ext
PY

# Third-party files under 64 KiB, sorted into formats by their magic bytes.
if [ -d "$cache/pkgs" ]; then
    find "$cache/pkgs" -type f -size -64k | while read -r f; do
        magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
        case $magic in
            89504e47) fmt=png ;;
            ffd8ff*) fmt=jpeg ;;
            52494646) fmt=webp ;;
            49492a00|4d4d002a|49492b00|4d4d002b) fmt=tiff ;;
            47494638) fmt=gif ;;
            424d*) fmt=bmp ;;
            503[1-7]*) fmt=pnm ;;
            *) continue ;;
        esac
        cp "$f" "$out/$fmt/pkg-$(echo "$f" | md5sum | cut -c1-12)"
    done
fi
for d in "$out"/*/; do
    echo "corpus $(basename "$d"): $(ls "$d" | wc -l) files"
done
