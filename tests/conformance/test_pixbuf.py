# SPDX-License-Identifier: MIT
"""Conformance against gdk-pixbuf's installed tests (Debian gdk-pixbuf-tests): the GIF test suite
(each .conf names the expected first frame as raw RGBA, or no frames for files a decoder must
refuse), the must-fail set test-images/fail/ (every file must be refused with an error, none may
crash; formats dip lacks, such as TGA, ICO and XPM, are refused as unrecognised), the reftests and
top-level JPEG/PNG/TIFF pairs, and the randomly-modified set (valid.* must decode, the rest must
not crash)."""
import configparser
import glob
import os

import numpy as np

import confutil as cu

PKG = "gdk-pixbuf-tests"
s = cu.Suite("gdk-pixbuf tests")
root = cu.package_dir(PKG, "usr/libexec/installed-tests/gdk-pixbuf")
SUPPORTED = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pnm",
             ".webp")


def rel(p):
    return os.path.relpath(p, root)


# GIF suite files whose defect the suite's author decodes leniently (pixels missing, or no end
# code); dip fails closed on truncated data, so for these a refusal with a message is accepted,
# and a decode, when dip gives one, must match the reference.
LENIENT = {"missing-pixels", "no-eoi", "no-clear-and-eoi", "no-data", "image-zero-height",
           "image-zero-width", "image-zero-size"}

# ---- GIF test suite ----
gs = os.path.join(root, "test-images/gif-test-suite")
for conf in sorted(glob.glob(os.path.join(gs, "*.conf"))):
    name = os.path.basename(conf)[:-5]
    cp = configparser.ConfigParser()
    cp.read(conf)
    c = cp["config"]
    gif = os.path.join(gs, c["input"])
    frames = [f.strip() for f in c.get("frames", "").split(",") if f.strip()]
    if not frames:
        s.must_fail(PKG, rel(gif), gif)
        continue
    w, h = int(c["width"]), int(c["height"])
    raw = np.fromfile(os.path.join(gs, cp[frames[0]]["pixels"]), np.uint8)
    if raw.size != w * h * 4:
        s.fail(PKG, rel(gif), "reference %s has %d bytes, want %d" % (
            cp[frames[0]]["pixels"], raw.size, w * h * 4))
        continue
    ref = raw.reshape(h, w, 4)
    if name in LENIENT:
        res, _ = cu.decode(gif)
        if res["rc"] != "OK":
            s.survive(PKG, rel(gif), gif)
            continue
    # Pixels the suite leaves transparent (no frame covers them) carry no colour to compare.
    s.compare(PKG, rel(gif), gif, ref, label="suite rgba", alpha_mask=True)

# ---- must fail ----
for p in sorted(glob.glob(os.path.join(root, "test-images/fail/*"))):
    s.must_fail(PKG, rel(p), p)

# ---- reference pairs ----
pairs = [("bug725582-testrotate.jpg", "bug725582-testrotate.png", 3),
         ("large.jpg", "large.png", 3), ("icc-profile.jpeg", "icc-profile.png", 3),
         ("dpi.jpeg", "dpi.png", 3), ("dpi.tiff", "dpi.png", 0),
         ("test-images/reftests/bug696331.png", "test-images/reftests/bug696331.png.ref.png", 0),
         ("test-images/reftests/cat.jpg", "test-images/reftests/cat.jpg.ref.png", 3),
         ("test-images/reftests/mandatory-bitmasks.bmp",
          "test-images/reftests/mandatory-bitmasks.bmp.ref.png", 0)]
for img, ref, tol in pairs:
    p = os.path.join(root, img)
    r = cu.pil_rgba(os.path.join(root, ref))
    if tol:  # JPEG decoded by gdk-pixbuf (libjpeg-turbo, possibly another version or settings)
        s.compare(PKG, img, p, r, tol_max=tol, tol_mean=0.5, label="pixbuf ref")
    else:
        s.compare(PKG, img, p, r, label="pixbuf ref")
# gdk-pixbuf shows the readable part of a truncated JPEG; dip fails closed.
s.must_fail(PKG, "premature-end.jpg", os.path.join(root, "premature-end.jpg"))
for p in sorted(glob.glob(os.path.join(root, "*.gif"))) + [os.path.join(root, "cve-2015-4491.bmp")]:
    s.survive(PKG, rel(p), p)

# ---- randomly modified inputs: valid.* decode, others survive ----
for p in sorted(glob.glob(os.path.join(root, "test-images/randomly-modified/*"))):
    name = os.path.basename(p)
    if name.startswith("valid.") and name.endswith(SUPPORTED):
        ref = cu.cv2_rgba(p) if name.endswith((".jpeg", ".jpg", ".tiff")) else None
        if ref is None:
            try:
                ref = cu.pil_rgba(p)
            except Exception:  # noqa: BLE001 - Pillow lacks the format: no reference
                ref = None
        if ref is None:
            s.survive(PKG, rel(p), p)
        else:
            s.compare(PKG, rel(p), p, ref, tol_max=2 if name.endswith((".jpeg", ".jpg")) else 0,
                      label="cv2/pillow")
    else:
        s.survive(PKG, rel(p), p)

s.finish()
