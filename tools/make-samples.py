# SPDX-License-Identifier: MIT
"""Writes sample images for `make run` into a folder: real photos from Debian's python3-skimage
when installed, else synthetic ones, in several formats."""
import os
import sys

import cv2
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
photos = []
d = "/usr/lib/python3/dist-packages/skimage/data"
for name in ["astronaut.png", "coffee.png", "chelsea.png", "camera.png"]:
    p = os.path.join(d, name)
    if os.path.exists(p):
        photos.append((os.path.splitext(name)[0], cv2.imread(p, cv2.IMREAD_COLOR)))
if not photos:
    yy, xx = np.mgrid[0:480, 0:640]
    img = np.dstack([xx * 255 // 639, yy * 255 // 479, ((xx // 40 + yy // 40) % 2) * 255])
    cv2.circle(img, (320, 240), 120, (40, 200, 90), -1)
    photos.append(("synthetic", img.astype(np.uint8)))
exts = ["jpg", "png", "webp", "tif"]
for i, (name, img) in enumerate(photos):
    cv2.imwrite(os.path.join(out, "%s.%s" % (name, exts[i % len(exts)])), img)
