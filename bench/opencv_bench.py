# SPDX-License-Identifier: MIT
"""OpenCV's side of `make bench`: the same operations as `dip bench`, with OpenCV's equivalents,
on the same image, with cv2.setNumThreads(1) and OpenCV's default threading. Prints the same CSV
rows as `dip bench` with impl=opencv.
Usage: opencv_bench.py IMAGE SUITE RUNS [op,op,...]"""
import sys
import time

import cv2
import numpy as np

path, suite, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
only = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else None
img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
if img.ndim == 3:
    img = np.ascontiguousarray(img[:, :, ::-1])  # RGB like dip
rgb = img.ndim == 3
gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if rgb else img


def g():
    """Gray input as dip's gray-first ops see it (conversion included for colour input)."""
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if rgb else img


def sobel():
    x = g()
    dx = cv2.Sobel(x, cv2.CV_16S, 1, 0, ksize=3)
    dy = cv2.Sobel(x, cv2.CV_16S, 0, 1, ksize=3)
    return cv2.add(cv2.convertScaleAbs(dx), cv2.convertScaleAbs(dy))


def hsv():
    h = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    h[:, :, 2] = cv2.add(h[:, :, 2], 50)
    return cv2.cvtColor(h, cv2.COLOR_HSV2RGB)


def equalize_ycrcb():
    """dip's colour rule: equalise Y of YCrCb."""
    y = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    y[:, :, 0] = cv2.equalizeHist(y[:, :, 0])
    return cv2.cvtColor(y, cv2.COLOR_YCrCb2RGB)


def sharpen():
    b = cv2.GaussianBlur(img, (0, 0), 1.0)
    return cv2.addWeighted(img, 2.0, b, -1.0, 0)


OPS = {
    "invert": lambda: cv2.bitwise_not(img),
    "linear": lambda: cv2.convertScaleAbs(img, alpha=1.5, beta=0),
    "brightness": lambda: cv2.add(img, np.full_like(img, 60)),
    "gray": lambda: cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if rgb else img.copy(),
    "threshold": lambda: cv2.threshold(g(), 127, 255, cv2.THRESH_BINARY)[1],
    "otsu": lambda: cv2.threshold(g(), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1],
    "equalize": (lambda: equalize_ycrcb()) if rgb else (lambda: cv2.equalizeHist(img)),
    "stretch": lambda: cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX),
    "hsv": hsv if rgb else None,
    "box": lambda: cv2.blur(img, (5, 5)),
    "gaussian": lambda: cv2.GaussianBlur(img, (5, 5), 0),
    "median": lambda: cv2.medianBlur(img, 5),
    "bilateral": lambda: cv2.bilateralFilter(img, 9, 75, 75),
    "sobel": sobel,
    "sharpen": sharpen,
    "canny": lambda: cv2.Canny(img, 100, 200),
    "resize": lambda: cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
    "flip": lambda: cv2.flip(img, 1),
    "rotate": lambda: cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE),
    "crop": lambda: img.copy(),  # dip's default crop is the whole image (width=height=0)
}

mp = img.shape[0] * img.shape[1] / 1e6
size = "%dx%d" % (img.shape[1], img.shape[0])
for threads in [1, cv2.getNumberOfCPUs()]:
    cv2.setNumThreads(threads)
    for name, fn in OPS.items():
        if fn is None or (only and name not in only):
            continue
        fn()  # warm up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        times.sort()
        med = times[len(times) // 2]
        print("%s,%s,opencv,%d,%s,%d,%.6f,%.6f,%.6f,%.1f" % (suite, name, threads, size, runs, med,
                                                            times[0], times[-1], mp / med),
              flush=True)
