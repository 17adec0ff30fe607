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

# Where dip knowingly differs from the suite (reported to the codec owner; see docs): the reason
# is printed, and the test fails only if dip crashes or refuses without a message.
GAPS = {
    "max-codes": "giflib refuses an LZW minimum code size above 8 (this file has 11)",
}
# The suite expects no frame from a plain-text extension; its image block is real, so either a
# decode or a refusal is accepted.
EITHER = {"plain-text"}

# ---- GIF test suite ----
gs = os.path.join(root, "test-images/gif-test-suite")
for conf in sorted(glob.glob(os.path.join(gs, "*.conf"))):
    name = os.path.basename(conf)[:-5]
    cp = configparser.ConfigParser()
    cp.read(conf)
    c = cp["config"]
    gif = os.path.join(gs, c["input"])
    frames = [f.strip() for f in c.get("frames", "").split(",") if f.strip()]
    if name in EITHER:
        s.survive(PKG, rel(gif), gif)
        continue
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
    # dip's frame is every image block up to the first with a delay, composited, as the suite's
    # is when it does not force animation; force-animation=yes makes the suite show each
    # delay-less block as a frame of its own. Where no block has a delay, dip's (unforced) frame
    # is the whole file composited: what the forced animation shows at its last frame.
    if c.get("force-animation") == "yes":
        if any("delay" in cp[f] for f in frames):
            s.fail(PKG, rel(gif), "forced animation with delays: no unforced reference")
            continue
        last = np.fromfile(os.path.join(gs, cp[frames[-1]]["pixels"]), np.uint8)
        if last.size != w * h * 4:
            s.fail(PKG, rel(gif), "reference %s has %d bytes" % (cp[frames[-1]]["pixels"],
                                                                last.size))
            continue
        ref = last.reshape(h, w, 4)
    if name in LENIENT:
        res, _ = cu.decode(gif)
        if res["rc"] != "OK":
            s.survive(PKG, rel(gif), gif)
            continue
    # Pixels the suite leaves transparent (no frame covers them) carry no colour to compare.
    s.compare(PKG, rel(gif), gif, ref, label="suite rgba", alpha_mask=True,
              known_gap=GAPS.get(name))

# ---- must fail ----
for p in sorted(glob.glob(os.path.join(root, "test-images/fail/*"))):
    s.must_fail(PKG, rel(p), p)

# ---- reference pairs ----
# bug725582-testrotate.jpg stores EXIF orientation 6 as an SLONG; the reference is rotated.
pairs = [("bug725582-testrotate.jpg", "bug725582-testrotate.png", 3),
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
# dpi.png and icc-profile.png are other pictures (they test metadata), so the JPEGs compare with
# libjpeg through OpenCV and the RGBA TIFF with Pillow (OpenCV premultiplies its alpha).
for img in ["dpi.jpeg", "icc-profile.jpeg"]:
    p = os.path.join(root, img)
    s.compare(PKG, img, p, cu.cv2_rgba(p), tol_max=2, tol_mean=0.05, label="opencv")
s.compare(PKG, "dpi.tiff", os.path.join(root, "dpi.tiff"), cu.pil_rgba(os.path.join(root, "dpi.tiff")),
          label="pillow")
# gdk-pixbuf shows the readable rows of this PNG (its last IDAT is cut short); dip fails closed.
s.must_fail(PKG, "test-images/reftests/bug696331.png",
            os.path.join(root, "test-images/reftests/bug696331.png"))
# 22500x33300 and 25200x33300: past max_pixels, refused from the header.
for name in ["large.jpg", "large.png"]:
    res = s.must_fail(PKG, name, os.path.join(root, name))
    if res["rc"] != "ELIMIT" or "max_pixels" not in res.get("msg", ""):
        s.fail(PKG, name, "want ELIMIT naming max_pixels, got %s %s" % (res["rc"], res.get("msg")))
# gdk-pixbuf shows the readable part of a truncated JPEG; dip fails closed.
s.must_fail(PKG, "premature-end.jpg", os.path.join(root, "premature-end.jpg"))
for p in sorted(glob.glob(os.path.join(root, "*.gif"))) + [os.path.join(root, "cve-2015-4491.bmp")]:
    s.survive(PKG, rel(p), p)

# ---- randomly modified inputs: valid.* decode, others survive ----
for p in sorted(glob.glob(os.path.join(root, "test-images/randomly-modified/*"))):
    name = os.path.basename(p)
    if name.startswith("valid.") and name.endswith(SUPPORTED):
        ref = cu.cv2_rgba(p) if name.endswith((".jpeg", ".jpg")) else None
        if ref is None:
            try:
                ref = cu.pil_rgba(p)
            except Exception:  # noqa: BLE001 - Pillow lacks the format: no reference
                ref = None
        if ref is None:
            s.survive(PKG, rel(p), p)
        else:
            s.compare(PKG, rel(p), p, ref, tol_max=2 if name.endswith((".jpeg", ".jpg")) else 0,
                      label="cv2/pillow", alpha_mask=name.endswith(".gif"))
    else:
        s.survive(PKG, rel(p), p)

s.finish()
