# SPDX-License-Identifier: MIT
"""A batch does not fault its image buffers in again for every image: glibc's default malloc
mapped each megabyte-sized buffer afresh and gave the heap's top back to the kernel after every
image (2 600 minor page faults per 1080p image through this pipeline, a third of the job's CPU
in system time); `dip` keeps such buffers in the heap (src/cli/main.c, tune_malloc). Counted
with the kernel's own figures (wait4's rusage) for one image and for 25, so start-up is left
out. In the -Werror build only (label once): ASan's allocator ignores mallopt."""
import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
PIPE = "gaussian(size=5) | equalize | sharpen | resize(scale=0.5)"
ck = Checker()


def faults(files, out):
    """Minor page faults of one `dip process` run (the process and its threads)."""
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen([DIP, "process", "--quiet", "-t", "2", "-p", PIPE, "-o", out + "/"] +
                         files, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    ck.check(os.waitstatus_to_exitcode(status) == 0, "dip process exits 0: %s" % err)
    ck.check(len(os.listdir(out)) == len(files), "every output written: %s" % err)
    return ru.ru_minflt


with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(1)
    small = (rng.random((34, 60, 3)) * 255).astype(np.uint8)
    files = []
    for i in range(25):
        img = cv2.resize(np.roll(small, i, axis=1), (1920, 1080), interpolation=cv2.INTER_CUBIC)
        files.append(os.path.join(d, "p%02d.jpg" % i))
        cv2.imwrite(files[-1], img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    one = faults(files[:1], os.path.join(d, "one"))
    many = faults(files, os.path.join(d, "many"))
    per_image = (many - one) / (len(files) - 1)
    print("minor page faults: %d for one image, %d for %d: %.0f per further image" %
          (one, many, len(files), per_image))
    # 178 with the tuned malloc, 2 606 without (a 1080p RGB buffer is 1 518 pages).
    ck.check(per_image < 800, "a further 1080p image costs %.0f page faults (want < 800: its "
             "buffers are reused, not mapped again)" % per_image)

ck.done()
