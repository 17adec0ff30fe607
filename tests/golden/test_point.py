# SPDX-License-Identifier: MIT
"""Golden and property tests of the point, colour, statistic and geometric operations: dip against
OpenCV (cv2) and numpy on real photos (python3-skimage's data folder) and synthetic edge cases,
with each op's documented tolerance; identities (flip twice, four quarter turns, invert twice);
alpha pass-through; parameter errors; and byte-identical results for every tile size and thread
count, alone and in pipelines mixing point, statistic and geometric operations."""
import os
import sys

import cv2
import numpy as np

import diputil as du  # noqa: E402

if not du.DIP_RAW or not os.path.exists(du.DIP_RAW):
    print("DIP_RAW not set: run through ctest")
    sys.exit(77)

cv2.setNumThreads(1)
C = du.Checker()


def gray_of(img):
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def rgb_of(img):
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if img.ndim == 2 else img


def hsv_ref(img, dh, ds, dv):
    h = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.int32)
    h[..., 0] = (h[..., 0] + dh) % 180
    h[..., 1] = np.clip(h[..., 1] + ds, 0, 255)
    h[..., 2] = np.clip(h[..., 2] + dv, 0, 255)
    return cv2.cvtColor(h.astype(np.uint8), cv2.COLOR_HSV2RGB)


def equalize_ref(img):
    if img.ndim == 2:
        return cv2.equalizeHist(img)
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = cv2.equalizeHist(ycc[..., 0])
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def stretch_ref(img, low, high):
    c = img if img.ndim == 2 else img[..., :3]
    lo = int(np.percentile(c, low, method="lower"))
    hi = int(np.percentile(c, high, method="higher"))
    if hi <= lo:
        return img.copy()
    v = img.astype(np.int64)
    return np.clip(((v - lo) * 255 * 2 + (hi - lo)) // (2 * (hi - lo)), 0, 255).astype(np.uint8)


def otsu_ref(img):
    return cv2.threshold(gray_of(img), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]


INTER = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}

# (pipeline, reference(img) -> array, tolerance in levels, colour-only)
CASES = [
    ("invert", lambda im: cv2.bitwise_not(im), 0, False),
    ("invert | invert", lambda im: im, 0, False),
    ("linear", lambda im: cv2.convertScaleAbs(im, alpha=1.5, beta=0), 0, False),
    ("linear(alpha=0.6, beta=20.5)", lambda im: cv2.convertScaleAbs(im, alpha=0.6, beta=20.5), 1,
     False),
    ("linear(alpha=1.2, beta=-40)",
     lambda im: np.clip(np.rint(im.astype(np.float32) * np.float32(1.2) - np.float32(40)), 0,
                        255).astype(np.uint8), 1, False),
    ("brightness", lambda im: np.clip(im.astype(int) + 60, 0, 255).astype(np.uint8), 0, False),
    ("brightness(delta=-75)", lambda im: np.clip(im.astype(int) - 75, 0, 255).astype(np.uint8), 0,
     False),
    ("gray", lambda im: gray_of(im), 0, False),
    ("threshold", lambda im: cv2.threshold(gray_of(im), 127, 255, cv2.THRESH_BINARY)[1], 0, False),
    ("threshold(t=60, max=200, invert=true)",
     lambda im: cv2.threshold(gray_of(im), 60, 200, cv2.THRESH_BINARY_INV)[1], 0, False),
    ("otsu", otsu_ref, 0, False),
    ("equalize", equalize_ref, 0, False),
    ("stretch", lambda im: stretch_ref(im, 0, 100), 0, False),
    ("stretch(low=2, high=97.5)", lambda im: stretch_ref(im, 2, 97.5), 0, False),
    ("hsv", lambda im: hsv_ref(im, 0, 0, 50), 1, True),
    ("hsv(h=30, s=-40, v=-20)", lambda im: hsv_ref(im, 30, -40, -20), 1, True),
    ("hsv(h=-100, s=80, v=0)", lambda im: hsv_ref(im, -100, 80, 0), 1, True),
    ("flip(axis=h)", lambda im: cv2.flip(im, 1), 0, False),
    ("flip(axis=v)", lambda im: cv2.flip(im, 0), 0, False),
    ("flip(axis=both)", lambda im: cv2.flip(im, -1), 0, False),
    ("rotate(angle=90)", lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE), 0, False),
    ("rotate(angle=180)", lambda im: cv2.rotate(im, cv2.ROTATE_180), 0, False),
    ("rotate(angle=270)", lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE), 0, False),
]


def resize_cases(h, w):
    out = []
    sizes = [(max(1, w // 2), max(1, h // 2)), (max(1, w // 3), max(1, (h * 2) // 5)),
             (w * 2, h * 2), (w + 7, max(1, h - 1)), (max(1, (w * 3) // 4), h * 3 // 2 + 1)]
    for f, code in INTER.items():
        for (ow, oh) in sizes:
            out.append(("resize(width=%d, height=%d, filter=%s)" % (ow, oh, f),
                        lambda im, ow=ow, oh=oh, code=code: cv2.resize(im, (ow, oh),
                                                                       interpolation=code), 1))
    return out


def golden(name, img, resize_all=True):
    for text, ref, tol, colour_only in CASES:
        if colour_only and img.ndim == 2:
            continue
        try:
            got = du.run(text, img)
        except RuntimeError as e:
            C.check(False, "%s on %s: %s" % (text, name, e))
            continue
        want = ref(img)
        d = du.max_diff(got, want)
        C.check(d <= tol, "%s on %s: max diff %d > %d (shapes %s %s)" % (
            text, name, d, tol, got.shape, want.shape))
    cases = resize_cases(*img.shape[:2])
    # Tiny synthetic images: two sizes per filter (photos get all five).
    for text, ref, tol in (cases if resize_all else [c for i, c in enumerate(cases) if i % 5 < 2]):
        got = du.run(text, img)
        want = ref(img)
        d = du.max_diff(got, want)
        C.check(d <= tol, "%s on %s: max diff %d > %d (shapes %s %s)" % (
            text, name, d, tol, got.shape, want.shape))


def crop_checks(name, img):
    h, w = img.shape[:2]
    for (x, y, cw, ch) in [(0, 0, 0, 0), (w // 3, h // 4, max(1, w // 2), max(1, h // 3)),
                           (w - 1, h - 1, 1, 1), (1 % w, 0, 0, 0)]:
        got = du.run("crop(x=%d, y=%d, width=%d, height=%d)" % (x, y, cw, ch), img)
        want = img[y:y + (ch or h - y), x:x + (cw or w - x)]
        C.check(got.shape == want.shape and np.array_equal(got, want),
                "crop(%d,%d,%d,%d) on %s differs from numpy slicing" % (x, y, cw, ch, name))


def identities(name, img):
    for text in ["flip(axis=h) | flip(axis=h)", "flip(axis=v) | flip(axis=v)",
                 "rotate(angle=90) | rotate(angle=90) | rotate(angle=90) | rotate(angle=90)",
                 "rotate(angle=90) | rotate(angle=270)", "rotate(angle=180) | flip(axis=both)",
                 "invert | invert", "crop(x=0, y=0)", "brightness(delta=0)",
                 "linear(alpha=1, beta=0)", "hsv(v=0) | flip(axis=h) | flip(axis=h)"]:
        if text.startswith("hsv") and img.ndim == 2:
            continue
        got = du.run(text, img)
        if text.startswith("hsv"):
            ok = du.max_diff(got, hsv_ref(img, 0, 0, 0)) <= 1
        else:
            ok = got.shape == img.shape and np.array_equal(got, img)
        C.check(ok, "%s is not the identity on %s" % (text, name))
    got = du.run("rotate(angle=90) | flip(axis=h)", img)
    C.check(np.array_equal(got, np.ascontiguousarray(np.swapaxes(img, 0, 1))),
            "rotate(90) | flip(h) is not the transpose on %s" % name)


def alpha_checks(name, img):
    """RGBA and gray+alpha: colour ops keep alpha and treat the colour like the alpha-less
    image; gray-valued ops give gray+alpha."""
    rng = np.random.default_rng(7)
    alpha = rng.integers(0, 256, img.shape[:2], dtype=np.uint8)
    rgb = rgb_of(img)
    rgba = np.dstack([rgb, alpha])
    g = gray_of(img)
    ga = np.dstack([g, alpha])
    for text in ["linear(alpha=0.8, beta=10)", "brightness(delta=-30)", "hsv(h=20, s=10, v=10)",
                 "equalize", "stretch(low=1, high=99)", "resize(width=17, height=9, filter=area)",
                 "rotate(angle=90)", "crop(x=1, y=0)" if rgb.shape[1] > 1 else "flip(axis=v)"]:
        got, want = du.run(text, rgba), du.run(text, rgb)
        alpha_out = du.run(text, np.dstack([alpha, alpha, alpha]))
        C.check(got.shape[2] == 4 and np.array_equal(got[..., :3], want),
                "%s on %s+alpha: colour differs from the RGB result" % (text, name))
        if text.split("(")[0] in ("resize", "rotate", "crop", "flip"):
            C.check(np.array_equal(got[..., 3], alpha_out[..., 0]),
                    "%s on %s+alpha: alpha not moved with the pixels" % (text, name))
        else:
            C.check(np.array_equal(got[..., 3], alpha),
                    "%s on %s+alpha: alpha changed" % (text, name))
    for text in ["gray", "threshold(t=90)", "otsu"]:
        got = du.run(text, rgba)
        want = du.run(text, rgb)
        C.check(got.shape == rgb.shape[:2] + (2,) and np.array_equal(got[..., 0], want) and
                np.array_equal(got[..., 1], alpha), "%s on %s RGBA: not gray+alpha" % (text, name))
    for text in ["equalize", "stretch", "threshold", "otsu", "gray", "brightness", "linear"]:
        got, want = du.run(text, ga), du.run(text, g)
        C.check(got.shape == ga.shape and np.array_equal(got[..., 0], want) and
                np.array_equal(got[..., 1], alpha), "%s on %s gray+alpha" % (text, name))
    # Gray input to hsv: only v applies.
    got = du.run("hsv(h=40, s=90, v=-25)", g)
    C.check(np.array_equal(got, np.clip(g.astype(int) - 25, 0, 255).astype(np.uint8)),
            "hsv on gray %s: not a value shift" % name)


def errors():
    img = np.zeros((10, 20, 3), np.uint8)
    for text, field in [("crop(x=20)", "x="), ("crop(y=10)", "y="), ("crop(x=5, width=16)",
                                                                       "width="),
                        ("crop(y=9, height=2)", "height="), ("stretch(low=60, high=40)", "low="),
                        ("resize(scale=0)", "scale="), ("rotate(angle=45)", "angle"),
                        ("flip(axis=diagonal)", "axis"), ("resize(filter=lanczos)", "filter"),
                        ("threshold(t=256)", "t=")]:
        try:
            du.run(text, img)
            C.check(False, "%s was accepted" % text)
        except RuntimeError as e:
            C.check(field in str(e), "%s: error does not name %r: %s" % (text, field, e))


TILES = [0, 1, 2, 3, 7, 64, 257]
THREADS = [1, 2, 7]
# Every op with other than its defaults (tests/property/test-tiling.c sweeps the defaults on
# every channel count and 1xN / Nx1 images).
TILED = ["linear(alpha=0.7, beta=9)", "brightness(delta=-40)", "threshold(t=100, invert=1)",
         "hsv(h=17, s=-20, v=30)", "otsu(max=200)", "stretch(low=3, high=96)",
         "resize(width=23, height=41, filter=area)", "resize(width=1, height=1, filter=area)",
         "resize(width=80, height=33, filter=linear)", "resize(scale=2.5, filter=cubic)",
         "crop(x=3, y=2, width=20, height=15)", "flip(axis=both)", "rotate(angle=270)",
         # pipelines mixing point, statistic and geometric ops, statistics after geometry
         "rotate(angle=90) | equalize | resize(width=30, height=20, filter=linear) | otsu",
         "crop(x=2, y=1) | hsv(v=-20) | stretch(low=5, high=95) | flip(axis=v) | threshold",
         "resize(scale=0.37, filter=area) | gray | equalize | rotate(angle=180)",
         "brightness(delta=30) | resize(width=61, height=47, filter=cubic) | stretch | invert"]


def tiling(name, img):
    for text in TILED:
        try:
            ref = du.run(text, img, 0, 1)
        except RuntimeError:
            if img.shape[0] > 20 and img.shape[1] > 20:
                raise
            continue  # crop outside a tiny image: refused, consistently (see errors())
        bad = []
        for t in TILES:
            for th in THREADS:
                got = du.run(text, img, t, th)
                if got.shape != ref.shape or not np.array_equal(got, ref):
                    bad.append((t, th))
        C.check(not bad, "%s on %s: tilings %s differ from the untiled result" % (
            text, name, bad))


def main():
    photos = du.photos()
    C.check(len(photos) > 0, "no photos found (install python3-skimage)")
    for name, img in photos:
        golden(name, img)
        crop_checks(name, img)
    synth = du.synthetic()
    for name, img in synth:
        golden(name, img, resize_all=False)
        crop_checks(name, img)
        if img.ndim == 3:  # the gray twins add nothing here: alpha_checks makes both
            identities(name, img)
            alpha_checks(name, img)
    for name, img in photos[:2]:
        identities(name, img)
        alpha_checks(name, img[:40, :50])
    errors()
    # 1xN, Nx1 and every channel count with defaults: tests/property/test-tiling.c.
    small = [(n, i) for n, i in synth if n in ("noise31x47",)]
    if photos:
        small.append(("crop of " + photos[0][0], photos[0][1][100:163, 200:271]))
    for name, img in small:
        tiling(name, img)
    C.done()


main()
