# SPDX-License-Identifier: MIT
"""The benchmark's 12-megapixel photo: a real photo from Debian's python3-skimage (astronaut)
scaled to 4000x3000 with mild sensor noise, and its gray version."""
import os
import sys

import cv2
import numpy as np

src = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"
if os.path.exists(src):
    img = cv2.imread(src, cv2.IMREAD_COLOR)
else:
    yy, xx = np.mgrid[0:512, 0:512]
    img = np.dstack([xx // 2, yy // 2, (xx + yy) // 4]).astype(np.uint8)
img = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
noise = np.random.default_rng(7).normal(0, 4, img.shape)
img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
cv2.imwrite(sys.argv[1], img)
cv2.imwrite(sys.argv[2], cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
