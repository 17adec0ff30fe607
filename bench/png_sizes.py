# SPDX-License-Identifier: MIT
"""PNG sizes and encode times, dip against OpenCV (libpng's adaptive filter heuristic + zlib) at
levels 1, 6 and 9 on photos, screenshots and line art found on a Debian system (skimage data,
wallpapers, documentation images). dip picks each row's filter with libpng's rule (minimum sum
of absolute differences), so the differences come from the deflate engine.
Usage: png_sizes.py DIP_BINARY OUT_DIR"""
import os
import subprocess
import sys
import time

import cv2

dip, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
wall = os.path.join(os.path.dirname(here), ".cache/photos/x/usr/share/wallpapers")
sk = "/usr/lib/python3/dist-packages/skimage/data"
images = [
    ("photo", os.path.join(out, "photo12.ppm")),
    ("photo", os.path.join(wall, "Path/contents/images/2560x1600.jpg")),
    ("photo", sk + "/astronaut.png"),
    ("photo", sk + "/coffee.png"),
    ("screenshot", "/usr/share/doc/valgrind/html/images/kcachegrind_xtree.png"),
    ("screenshot", "/usr/share/doc/valgrind/html/images/dh-tree.png"),
    ("line art", "/usr/share/doc/nodejs/contributing/doc_img/compare-boxplot.png"),
    ("line art", "/usr/share/info/gnupg-module-overview.png"),
    ("line art", sk + "/text.png"),
]
print("| kind | image | size | level | dip bytes | libpng bytes | dip/libpng | dip s | libpng s |")
print("|---|---|---|---|---|---|---|---|---|")
for kind, path in images:
    if not os.path.exists(path):
        continue
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        continue
    src = os.path.join(out, "sizes-src.png")
    cv2.imwrite(src, img, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    for level in (1, 6, 9):
        o = os.path.join(out, "sizes-dip.png")
        t = time.perf_counter()
        subprocess.run([dip, "process", "--quiet", "--threads", "1", "--png-level", str(level),
                        "-o", o, src], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        td = time.perf_counter() - t
        t = time.perf_counter()
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])
        tc = time.perf_counter() - t
        d = os.path.getsize(o)
        print("| %s | %s | %dx%d | %d | %d | %d | %.3f | %.2f | %.2f |" % (
            kind, os.path.basename(path), img.shape[1], img.shape[0], level, d, len(buf),
            d / len(buf), td, tc))
        sys.stdout.flush()
