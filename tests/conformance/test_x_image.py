# SPDX-License-Identifier: MIT
"""Conformance against golang.org/x/image's testdata (Debian golang-golang-x-image-dev): TIFF
(strips, tiles, LZW, deflate, PackBits, CCITT G3/G4, 16-bit, gray, palette) and BMP files against
the reference PNGs the package ships (exact, as x/image's own tests require), lossless WebP
against its reference PNG (exact), lossy WebP (with and without alpha) against libwebp through
OpenCV (max difference 2), and TIFFs without a reference PNG against Pillow's decode (max
difference 1, for 16-bit rounding)."""
import glob
import os

import confutil as cu

PKG = "golang-golang-x-image-dev"
s = cu.Suite("x/image testdata")
td = cu.package_dir(PKG, "usr/share/gocode/src/golang.org/x/image/testdata")


def P(name):
    return os.path.join(td, name)


def png(name):
    return cu.pil_rgba(P(name))


# ---- TIFF: the pairs x/image/tiff/reader_test.go checks, exact ----
pairs = [
    ("video-001.tiff", "video-001.png"), ("video-001-strip-64.tiff", "video-001.png"),
    ("video-001-tile-64x64.tiff", "video-001.png"), ("video-001-16bit.tiff", "video-001.png"),
    ("video-001-uncompressed.tiff", "video-001.png"),
    ("blue-purple-pink.lzwcompressed.tiff", "blue-purple-pink.png"),
    ("bw-gopher_ccittGroup3.tiff", "bw-gopher.png"), ("bw-gopher_ccittGroup4.tiff", "bw-gopher.png"),
]
for t, ref in pairs:
    s.compare(PKG, t, P(t), png(ref), label=ref)
# The rest have no reference PNG: Pillow's decode (OpenCV's would do, but it premultiplies the
# colour of RGBA TIFFs by alpha), or libtiff's through OpenCV where Pillow cannot read the file.
paired = {t for t, _ in pairs}
for p in sorted(glob.glob(P("*.tiff"))):
    name = os.path.basename(p)
    if name in paired:
        continue
    try:
        ref, label = cu.pil_rgba(p), "pillow"
    except Exception:  # noqa: BLE001 - Pillow lacks this TIFF flavour
        ref, label = cu.cv2_rgba(p), "libtiff"
    if ref is None:
        s.survive(PKG, name, p)  # no reference decoder reads it: no crash is all we ask
        continue
    s.compare(PKG, name, p, ref, tol_max=1, label=label)

# ---- BMP: x/image/bmp/reader_test.go pairs, exact ----
for name in ["colormap", "video-001", "yellow_rose-small", "yellow_rose-small-v5"]:
    s.compare(PKG, name + ".bmp", P(name + ".bmp"), png(name + ".png"), label=name + ".png")

# ---- WebP ----
for p in sorted(glob.glob(P("*.lossless.webp"))):
    name = os.path.basename(p)
    ref = name.replace(".lossless.webp", ".png")
    if os.path.exists(P(ref)):
        s.compare(PKG, name, p, png(ref), label=ref)
    else:
        s.compare(PKG, name, p, cu.cv2_rgba(p), label="libwebp")
for p in sorted(glob.glob(P("*.lossy*.webp"))):
    # The shipped .ycbcr.png files hold raw Y'CbCr planes, not RGB; libwebp is the reference.
    s.compare(PKG, os.path.basename(p), p, cu.cv2_rgba(p), tol_max=2, tol_mean=0.05,
              label="libwebp")

s.finish()
