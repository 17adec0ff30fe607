#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Golden tests of the stencil and edge operations (box, gaussian, median, bilateral, sharpen,
sobel, canny) against OpenCV on real photos (Debian's python3-skimage) and synthetic edge cases,
gray and colour, with and without alpha; then tiling invariance of non-default parameters and of
pipelines mixing them. dip works in RGB(A) order, OpenCV in BGR(A): arrays are flipped before
and after every OpenCV call, never compared as files."""
import os
import sys

import cv2
import numpy as np

import diputil  # noqa: E402
from diputil import Checker, max_diff, run  # noqa: E402

if not diputil.DIP_RAW or not os.path.exists(diputil.DIP_RAW):
    print("DIP_RAW (the dip-raw tool) is not set: skipped")
    sys.exit(77)


def flip(a):
    """RGB(A) <-> BGR(A); gray and gray+alpha unchanged."""
    if a.ndim == 3 and a.shape[2] == 3:
        return np.ascontiguousarray(a[:, :, ::-1])
    if a.ndim == 3 and a.shape[2] == 4:
        return np.ascontiguousarray(a[:, :, [2, 1, 0, 3]])
    return a


def per_channel(fn, a):
    """fn on each channel separately (for channel counts OpenCV refuses)."""
    if a.ndim == 2:
        return fn(a)
    return np.dstack([fn(np.ascontiguousarray(a[:, :, c])) for c in range(a.shape[2])])


def colour_part(a):
    """What the edge ops look at: gray, or the colour channels without alpha."""
    if a.ndim == 2:
        return a
    if a.shape[2] <= 2:
        return np.ascontiguousarray(a[:, :, 0])
    return np.ascontiguousarray(a[:, :, :3])


def ref_gray(a):
    c = colour_part(a)
    return cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) if c.ndim == 3 else c


def ref_sobel(a, k=3):
    g = ref_gray(a)
    dx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=k)
    dy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=k)
    return cv2.add(cv2.convertScaleAbs(dx), cv2.convertScaleAbs(dy))


def ref_canny(a, lo=100, hi=200):
    return cv2.Canny(flip(colour_part(a)), lo, hi)


def ref_median(a, k):
    if a.ndim == 3 and a.shape[2] == 2:
        return per_channel(lambda c: cv2.medianBlur(c, k), a)
    return flip(cv2.medianBlur(flip(a), k))


def ref_sharpen(a, sigma=1.0, amount=1.0, threshold=0):
    b = cv2.GaussianBlur(a, (0, 0), sigma).astype(np.int32)
    d = a.astype(np.int32) - b
    out = np.clip(a + np.floor(amount * d + 0.5), 0, 255).astype(np.uint8)
    return np.where(np.abs(d) >= threshold, out, a)


def ref_bilateral(a, d=9, sc=75, ss=75):
    """OpenCV takes gray and BGR: the colour part goes through OpenCV; alpha gets its own check
    (see bilateral_alpha below)."""
    c = colour_part(a)
    return flip(cv2.bilateralFilter(flip(c), d, sc, ss))


def with_alpha(img, rng):
    """The gray+alpha and RGBA variants of an image, alpha random."""
    alpha = rng.integers(0, 256, img.shape[:2], dtype=np.uint8)
    if img.ndim == 2:
        return np.dstack([img, alpha])
    return np.dstack([img, alpha])


# pipeline, reference (RGB in, dip's layout out), exact? (else within 1 level), what it checks
CASES = [
    ("box", lambda a: flip(cv2.blur(flip(a), (5, 5))), True),
    ("box(size=1)", lambda a: a, True),
    ("box(size=3)", lambda a: flip(cv2.blur(flip(a), (3, 3))), True),
    ("box(size=13)", lambda a: flip(cv2.blur(flip(a), (13, 13))), True),
    ("box(size=31)", lambda a: flip(cv2.blur(flip(a), (31, 31))), True),
    ("gaussian", lambda a: flip(cv2.GaussianBlur(flip(a), (5, 5), 0)), True),
    ("gaussian(size=1)", lambda a: a, True),
    ("gaussian(size=3)", lambda a: flip(cv2.GaussianBlur(flip(a), (3, 3), 0)), True),
    ("gaussian(size=7)", lambda a: flip(cv2.GaussianBlur(flip(a), (7, 7), 0)), True),
    ("gaussian(size=11)", lambda a: flip(cv2.GaussianBlur(flip(a), (11, 11), 0)), True),
    ("gaussian(size=5, sigma=1.7)", lambda a: flip(cv2.GaussianBlur(flip(a), (5, 5), 1.7)),
     True),
    ("gaussian(size=0, sigma=2.5)", lambda a: flip(cv2.GaussianBlur(flip(a), (0, 0), 2.5)),
     True),
    ("gaussian(size=0, sigma=0.6)", lambda a: flip(cv2.GaussianBlur(flip(a), (0, 0), 0.6)),
     True),
    ("median", lambda a: ref_median(a, 5), True),
    ("median(size=1)", lambda a: a, True),
    ("median(size=3)", lambda a: ref_median(a, 3), True),
    ("median(size=7)", lambda a: ref_median(a, 7), True),
    ("median(size=11)", lambda a: ref_median(a, 11), True),
    ("bilateral", lambda a: ref_bilateral(a), False),
    ("bilateral(d=5, sigma_color=30, sigma_space=10)", lambda a: ref_bilateral(a, 5, 30, 10),
     False),
    ("bilateral(d=0, sigma_color=50, sigma_space=2)", lambda a: ref_bilateral(a, 0, 50, 2),
     False),
    ("sobel", lambda a: ref_sobel(a, 3), True),
    ("sobel(size=1)", lambda a: ref_sobel(a, 1), True),
    ("sobel(size=5)", lambda a: ref_sobel(a, 5), True),
    ("sobel(size=7)", lambda a: ref_sobel(a, 7), True),
    ("sharpen", lambda a: ref_sharpen(a), False),
    ("sharpen(sigma=2, amount=1.5, threshold=4)", lambda a: ref_sharpen(a, 2, 1.5, 4), False),
    ("canny", lambda a: ref_canny(a), None),
    ("canny(low=30, high=90)", lambda a: ref_canny(a, 30, 90), None),
    ("canny(low=200, high=100)", lambda a: ref_canny(a, 200, 100), None),
]

# The operations on their defaults run on every photo; variants on three of them.
DEFAULTS = {"box", "gaussian", "median", "bilateral", "sobel", "sharpen", "canny"}


def compare(ck, pipeline, ref_fn, exact, name, img):
    ref = ref_fn(img)
    got = run(pipeline, img)
    if pipeline.startswith("bilateral") and img.ndim == 3 and img.shape[2] in (2, 4):
        got = got[:, :, : img.shape[2] - 1]
        if got.shape[2] == 1:
            got = got[:, :, 0]
    what = "%s on %s %s" % (pipeline, name, img.shape)
    if got.shape != ref.shape:
        ck.check(False, "%s: shape %s, OpenCV %s" % (what, got.shape, ref.shape))
        return
    if exact is None:  # canny: identical on >= 99.5% of pixels (we aim for all)
        same = float(np.mean(got == ref)) if ref.size else 1.0
        ck.check(same >= 0.995, "%s: %.4f%% identical to OpenCV" % (what, 100 * same))
        ck.check(set(np.unique(got)) <= {0, 255}, "%s: output is 0/255 only" % what)
    elif exact:
        ck.check(np.array_equal(got, ref), "%s: max diff %d, %d pixels differ (want identical)"
                 % (what, max_diff(got, ref), int(np.sum(got != ref))))
    else:
        d = max_diff(got, ref)
        ck.check(d <= 1, "%s: max diff %d (want <= 1)" % (what, d))


def golden(ck):
    rng = np.random.default_rng(5)
    photos = diputil.photos()[:5]  # five of nine; three under sanitizers (diputil.photos)
    ck.check(len(photos) >= 3, "real photos found (install python3-skimage): %d" % len(photos))
    inputs = []
    for name, img in photos:
        inputs.append((name, img, True))
    for name, img in diputil.synthetic():
        inputs.append((name, img, False))
    # Alpha variants of a few synthetic images and of one photo.
    extra = []
    for name, img, _ in inputs:
        if name in ("noise31x47", "gnoise31x47", "noise1x17", "gnoise23x1", "noise2x2",
                    "astronaut.png"):
            extra.append((name + "+alpha", with_alpha(img, rng), name == "astronaut.png"))
    inputs += extra
    nphoto = 0
    for name, img, is_photo in inputs:
        if is_photo:
            nphoto += 1
        for pipeline, ref_fn, exact in CASES:
            base = pipeline.split("(")[0]
            # Variants, and bilateral (the slowest), on three photos; the rest on five.
            if is_photo and nphoto > 3 and (pipeline not in DEFAULTS or base == "bilateral"):
                continue
            compare(ck, pipeline, ref_fn, exact, name, img)


def bilateral_alpha(ck):
    """Alpha is averaged with the colour weights: an alpha equal to the first channel must come
    out equal to it, byte for byte."""
    rng = np.random.default_rng(9)
    for img in [rng.integers(0, 256, (29, 37, 3), dtype=np.uint8),
                rng.integers(0, 256, (29, 37), dtype=np.uint8)]:
        first = img if img.ndim == 2 else img[:, :, 0]
        a = np.dstack([img, first])
        got = run("bilateral(d=7, sigma_color=40, sigma_space=5)", a)
        ck.check(np.array_equal(got[:, :, -1], got[:, :, 0]),
                 "bilateral alpha follows the colour weights (%d channels)" % a.shape[2])


def invariance(ck):
    """Non-default parameters and mixed pipelines: byte-identical for every tiling/threads."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:29, 0:37]
    smooth = ((xx * 6 + yy * 4) % 256).astype(np.uint8)
    imgs = [np.clip(np.dstack([smooth, 255 - smooth, smooth // 2]).astype(np.int32) +
                    rng.integers(-20, 20, (29, 37, 3)), 0, 255).astype(np.uint8),
            rng.integers(0, 256, (31, 19), dtype=np.uint8),
            rng.integers(0, 256, (17, 23, 4), dtype=np.uint8)]
    pipelines = [
        "box(size=9)", "gaussian(size=0, sigma=2.5)", "median(size=3)", "median(size=7)",
        "bilateral(d=5, sigma_color=30, sigma_space=3)", "sobel(size=5)",
        "sharpen(sigma=1.5, amount=2, threshold=3)", "canny(low=30, high=90)",
        "gaussian | canny", "median(size=3) | sharpen | sobel",
        "box(size=3) | bilateral(d=5) | canny(low=50, high=150)",
        "gaussian | median | box | sharpen", "invert | gaussian(size=7) | canny(low=20, high=60)",
    ]
    for img in imgs:
        for p in pipelines:
            ref = run(p, img)
            bad = []
            for tile in (1, 2, 3, 7, 64, 257, 0):
                for threads in (1, 2, 7):
                    got = run(p, img, tile, threads)
                    if not np.array_equal(got, ref):
                        bad.append((tile, threads))
            ck.check(not bad, "%s on %s: tilings %s differ from the untiled result"
                     % (p, img.shape, bad))


def params(ck):
    """Bad parameters are refused with a message naming the parameter."""
    img = np.zeros((8, 8, 3), np.uint8)
    for p, word in [("box(size=4)", "size"), ("median(size=6)", "size"),
                    ("gaussian(size=0, sigma=0)", "sigma"), ("gaussian(size=8)", "size"),
                    ("sobel(size=4)", "size"), ("sharpen(size=6)", "size"),
                    ("bilateral(d=0, sigma_space=20)", "d"), ("gaussian(sigma=30)", "sigma"),
                    ("box(size=0)", "size")]:
        try:
            run(p, img)
            ck.check(False, "%s was accepted" % p)
        except RuntimeError as e:
            ck.check(word in str(e), "%s refused naming '%s': %s" % (p, word, e))


def main():
    ck = Checker()
    golden(ck)
    bilateral_alpha(ck)
    invariance(ck)
    params(ck)
    ck.done()


if __name__ == "__main__":
    main()
