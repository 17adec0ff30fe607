#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The AVX2 paths (2x2 resize, and the 4x4 area resize's own loop, mirrored rows of flip and rotate 180, canny's suppression, gray gaussian and sharpen, bilateral's mirrored taps) give
the same bytes as their definitions at every row width around their vector sizes, every channel
count and several tilings: the vector loop stops short of the row end and the scalar loop
finishes it, so widths of 1 .. 70 pixels cover a round, a round and a tail, and tails only."""
import os
import sys

import cv2
import numpy as np

import diputil as du  # noqa: E402

if not du.DIP_RAW or not os.path.exists(du.DIP_RAW):
    print("DIP_RAW (the dip-raw tool) is not set: skipped")
    sys.exit(77)

C = du.Checker()
rng = np.random.default_rng(11)
widths = list(range(1, 71)) + [127, 128, 129, 255, 256, 257]
for ch in [1, 2, 3, 4]:
    for w in widths:
        shape = (6, w) if ch == 1 else (6, w, ch)
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        for tile in [0, 4]:
            C.check(np.array_equal(du.run("flip(axis=h)", a, tile=tile), a[:, ::-1]),
                    "flip(axis=h) %d channels, width %d, tile %d" % (ch, w, tile))
            C.check(np.array_equal(du.run("rotate(angle=180)", a, tile=tile), a[::-1, ::-1]),
                    "rotate(angle=180) %d channels, width %d, tile %d" % (ch, w, tile))
            if w % 2 == 0:
                b = a.astype(np.int32)
                want = ((b[0::2, 0::2] + b[0::2, 1::2] + b[1::2, 0::2] + b[1::2, 1::2] + 2) >> 2)
                for f in ["linear", "area"]:
                    got = du.run("resize(width=%d, height=3, filter=%s)" % (w // 2, f), a, tile=tile)
                    C.check(np.array_equal(got, want.astype(np.uint8)),
                            "resize 1/2 (%s) %d channels, width %d, tile %d" % (f, ch, w, tile))
            if w % 4 == 0:
                b = a[:4].astype(np.int64)
                s = sum(b[j::4, i::4] for j in range(4) for i in range(4))
                want = np.round(s / 16.0).astype(np.uint8)  # half to even, as lrintf
                got = du.run("resize(width=%d, height=1, filter=area)" % (w // 4), a[:4], tile=tile)
                C.check(np.array_equal(got, want),
                        "resize 1/4 (area) %d channels, width %d, tile %d" % (ch, w, tile))
# gray gaussian with a 3-, 5- or 7-tap kernel that the 16-bit path cannot take (sigma given), and
# sharpen (amount 1 has its own byte loop, gray and colour; threshold too), against OpenCV.
for w in widths:
    a = rng.integers(0, 256, (9, w), dtype=np.uint8)
    for s in [0.3, 0.6, 1.0]:
        want = cv2.GaussianBlur(a, (0, 0), s)
        got = du.run("gaussian(size=0, sigma=%g)" % s, a)
        C.check(np.array_equal(got, want), "gaussian(sigma=%g) gray width %d" % (s, w))
    b = cv2.GaussianBlur(a, (0, 0), 1.0).astype(np.int32)
    d = a.astype(np.int32) - b
    for tile, cases in [(0, [(1, 0), (1, 9), (1.5, 9)]), (4, [(1, 9)])]:
        for amount, thr in cases:
            out = np.clip(a + np.floor(amount * d + 0.5), 0, 255).astype(np.uint8)
            want = np.where(np.abs(d) >= thr, out, a)
            got = du.run("sharpen(amount=%g, threshold=%d)" % (amount, thr), a, tile=tile)
            C.check(np.array_equal(got, want), "sharpen(amount=%g, threshold=%d) gray width %d, "
                    "tile %d" % (amount, thr, w, tile))
    c = rng.integers(0, 256, (9, w, 3), dtype=np.uint8)  # colour: the byte mix, RGB rows
    dc = c.astype(np.int32) - cv2.GaussianBlur(c, (0, 0), 1.0).astype(np.int32)
    want = np.where(np.abs(dc) >= 9, np.clip(c + dc, 0, 255), c).astype(np.uint8)
    C.check(np.array_equal(du.run("sharpen(threshold=9)", c), want),
            "sharpen(threshold=9) colour width %d" % w)
# bilateral: the mirrored-tap path (radius <= 5) in strips of 256 columns, and the direct one,
# gray and colour, against OpenCV at widths around the strip width.
for w in [1, 9, 255, 256, 257, 513]:
    for shape in [(14, w), (14, w, 3)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        for d, sc, ss in [(9, 75, 75), (11, 40, 5), (13, 30, 4)]:
            want = cv2.bilateralFilter(a if a.ndim == 2 else np.ascontiguousarray(a[:, :, ::-1]),
                                       d, sc, ss)
            if a.ndim == 3:
                want = want[:, :, ::-1]
            for tile in [0, 5]:
                got = du.run("bilateral(d=%d, sigma_color=%d, sigma_space=%d)" % (d, sc, ss), a,
                             tile=tile)
                # Within 1 of OpenCV, as in test_filters (a few pixels differ in both paths).
                diff = np.abs(got.astype(int) - want.astype(int)).max() if got.size else 0
                C.check(got.shape == want.shape and diff <= 1,
                        "bilateral(d=%d) %d channels, width %d, tile %d: max diff %d"
                        % (d, a.ndim == 3 and 3 or 1, w, tile, diff))
# stretch on an image that already spans 0..255 is a copy (its own path), alpha included.
for ch in [1, 2, 3, 4]:
    a = rng.integers(0, 256, (5, 37) if ch == 1 else (5, 37, ch), dtype=np.uint8)
    a[0, 0], a[0, 1] = 0, 255  # every channel
    for tile in [0, 2]:
        C.check(np.array_equal(du.run("stretch", a, tile=tile), a),
                "stretch of a full-range image is the image (%d channels, tile %d)" % (ch, tile))
# canny: noise and a smooth ramp with steps, gray and colour, against cv2.Canny.
yy, xx = np.mgrid[0:24, 0:80]
for w in [w for w in widths if w >= 3]:
    for name, img in [("noise", rng.integers(0, 256, (24, w, 3), dtype=np.uint8)),
                      ("steps", np.dstack([((xx * 7 + yy * 13) % 256)[:, :w].astype(np.uint8)] * 3)
                       if w <= 80 else None)]:
        if img is None:
            continue
        for lo, hi in [(100, 200), (20, 60)]:
            for colour in [True, False]:
                src = img if colour else np.ascontiguousarray(img[:, :, 0])
                want = cv2.Canny(src[:, :, ::-1] if colour else src, lo, hi)
                got = du.run("canny(low=%d, high=%d)" % (lo, hi), src, tile=0 if lo == 100 else 5)
                C.check(np.array_equal(got, want), "canny(%d, %d) on %s %s width %d" % (
                    lo, hi, name, "colour" if colour else "gray", w))
C.done()
