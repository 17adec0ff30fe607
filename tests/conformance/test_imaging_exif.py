# SPDX-License-Identifier: MIT
"""Conformance on the EXIF orientation set of Debian golang-github-disintegration-imaging-dev:
orientation_N.jpg (N = 0..8) store the same picture transformed so that applying EXIF
orientation N restores orientation_0. dip must report orientation N (1 when absent), decode to
the stored size with autorotate off, and with autorotate on give orientation_0's size and, as
imaging's own test checks, the same black/white mask (gray < 128); and it must match OpenCV's
EXIF-applying libjpeg-turbo decode within 2."""
import os

import numpy as np

import confutil as cu

PKG = "golang-github-disintegration-imaging-dev"
s = cu.Suite("imaging EXIF orientation")
td = cu.package_dir(PKG, "usr/share/gocode/src/github.com/disintegration/imaging/testdata")


def bw(rgba):
    g = (299 * rgba[:, :, 0].astype(np.int32) + 587 * rgba[:, :, 1] + 114 * rgba[:, :, 2]
         + 500) // 1000
    return g < 128


base_res, base = cu.decode(os.path.join(td, "orientation_0.jpg"))
if base is None:
    s.fail(PKG, "orientation_0.jpg", "dip refused it: %s" % base_res.get("msg"))
    s.finish()
base_bw = bw(cu.to_rgba(base))
for n in range(9):
    name = "orientation_%d.jpg" % n
    p = os.path.join(td, name)
    res = s.compare(PKG, name, p, cu.cv2_rgba(p, flags=1), tol_max=2, tol_mean=0.05,
                    label="libjpeg+exif")  # flags=1: IMREAD_COLOR, which applies EXIF
    if res is None:
        continue
    want = max(n, 1)
    if res["orientation"] != want or res["probe"]["orientation"] != want:
        s.fail(PKG, name, "orientation decode %d probe %d, want %d" % (
            res["orientation"], res["probe"]["orientation"], want))
    _, a = cu.decode(p)
    if a.shape[:2] != base.shape[:2]:
        s.fail(PKG, name, "auto-rotated size %s, orientation_0 is %s" % (a.shape, base.shape))
    else:
        wrong = int(np.count_nonzero(bw(cu.to_rgba(a)) != base_bw))
        # Each file was JPEG-coded on its own, so a few edge pixels may cross the threshold.
        if wrong > base_bw.size // 100:
            s.fail(PKG, name, "%d of %d pixels differ in the black/white mask" % (
                wrong, base_bw.size))
    _, raw = cu.decode(p, rotate=False)
    stored = (base.shape[1], base.shape[0]) if n >= 5 else base.shape[:2]
    if raw is None or raw.shape[:2] != stored:
        s.fail(PKG, name, "with autorotate off: size %s, want the stored %s" % (
            None if raw is None else raw.shape[:2], stored))

s.finish()
