# SPDX-License-Identifier: MIT
"""Conformance against Go's image testdata (Debian golang-1.19-src): the PngSuite subset and
Go's PNG samples against Pillow's independent PNG decoder (exact; 16-bit sources may differ by 1
from rounding to 8 bits), Go's must-fail PNGs, the JPEG chroma-subsampling / CMYK / RGB /
progressive set against libjpeg-turbo through OpenCV (max difference 2) and against the reference
PNG Go ships (the pre-encoding image; mean difference bounded, as Go's own test does), and the GIF
samples against Pillow's GIF decoder (exact)."""
import glob
import os

import confutil as cu

PKG = "golang-1.19-src"
s = cu.Suite("go image testdata")
root = cu.package_dir(PKG, "usr/share/go-*/src/image")


def rel(p):
    return os.path.relpath(p, root)


# ---- PNG ----
suite = sorted(glob.glob(os.path.join(root, "png/testdata/pngsuite/*.png")))
samples = [p for p in sorted(glob.glob(os.path.join(root, "png/testdata/*.png")))
           if not os.path.basename(p).startswith("invalid-")]
for p in suite + samples:
    ref = cu.pil_rgba(p)
    with open(p, "rb") as f:
        sixteen = f.read(25)[24] == 16  # IHDR bit depth
    s.compare(PKG, rel(p), p, ref, tol_max=1 if sixteen else 0, label="pillow")

# Go's reader rejects these; dip fails closed on corrupt data, so must too.
GAPS = {"invalid-palette.png": "libpng 1.6 checks palette indices with '>' where '>=' is needed, "
        "so index 255 into a 255-entry PLTE passes and decodes as black"}
for p in sorted(glob.glob(os.path.join(root, "png/testdata/invalid-*.png"))):
    s.must_fail(PKG, rel(p), p, known_gap=GAPS.get(os.path.basename(p)))

# ---- JPEG ----
td = os.path.join(root, "testdata")
goref = {  # Go's image/decode_test.go pairs: the PNG each JPEG was encoded from
    "video-001.jpeg": "video-001.png", "video-001.progressive.jpeg": "video-001.png",
    "video-001.221212.jpeg": "video-001.221212.png", "video-001.cmyk.jpeg": "video-001.cmyk.png",
    "video-001.rgb.jpeg": "video-001.rgb.png", "video-005.gray.jpeg": "video-005.gray.png",
    "video-001.progressive.truncated.jpeg": "video-001.progressive.truncated.png",
}
for p in sorted(glob.glob(os.path.join(td, "*.jpeg"))):
    name = os.path.basename(p)
    ref = cu.cv2_rgba(p)
    # CMYK to RGB happens outside libjpeg, in OpenCV's and in dip's own arithmetic: rounding
    # differs by up to 2 there. (The .truncated file stops after a few scans but ends with EOI:
    # a valid, coarser progressive JPEG.)
    s.compare(PKG, rel(p), p, ref, tol_max=2, tol_mean=0.5 if "cmyk" in name else 0.05,
              label="libjpeg")
    if name in goref:
        # The source image before lossy coding: Go allows 8/255 per channel with its own
        # decoder; libjpeg-turbo's decode differs more at a few edge pixels (RGB JPEG: 94), so
        # the mean difference is bounded, at 4/255.
        s.compare(PKG, rel(p), p, cu.pil_rgba(os.path.join(td, goref[name])), tol_max=255,
                  tol_mean=4.0, label="go-png")

# ---- GIF ----
for p in sorted(glob.glob(os.path.join(td, "*.gif"))):
    s.compare(PKG, rel(p), p, cu.pil_rgba(p), tol_max=0, label="pillow", alpha_mask=True)
    if os.path.basename(p).startswith("video-001"):
        tol = 128 if "5bpp" in p else 64  # Go's decode_test.go tolerances
        s.compare(PKG, rel(p), p, cu.pil_rgba(os.path.join(td, "video-001.png")), tol_max=tol,
                  label="go-png")

s.finish()
