# SPDX-License-Identifier: MIT
"""A 12-megapixel benchmark image and its gray version.
Usage: make_photo.py SRC OUT.png OUT-gray.png   a real photo scaled to 4000x3000 (INTER_AREA when
                                                it shrinks, INTER_CUBIC when it grows)
       make_photo.py OUT.png OUT-gray.png       the synthetic image: Debian python3-skimage's
                                                astronaut (512x512) scaled up with mild noise"""
import os
import sys

import cv2
import numpy as np

if len(sys.argv) == 4:
    img = cv2.imread(sys.argv[1], cv2.IMREAD_COLOR)
    if img is None:
        sys.exit("make_photo.py: cannot read %s" % sys.argv[1])
    # Crop to 4:3 around the centre, then scale.
    h, w = img.shape[:2]
    if w * 3 > h * 4:
        c = h * 4 // 3
        img = img[:, (w - c) // 2:(w - c) // 2 + c]
    else:
        c = w * 3 // 4
        img = img[(h - c) // 2:(h - c) // 2 + c]
    shrink = img.shape[1] >= 4000
    img = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    outs = sys.argv[2:]
else:
    src = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
    if os.path.exists(src):
        img = cv2.imread(src, cv2.IMREAD_COLOR)
    else:
        yy, xx = np.mgrid[0:512, 0:512]
        img = np.dstack([xx // 2, yy // 2, (xx + yy) // 4]).astype(np.uint8)
    img = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(7).normal(0, 4, img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    outs = sys.argv[1:]
cv2.imwrite(outs[0], img)
cv2.imwrite(outs[1], cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
