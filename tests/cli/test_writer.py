# SPDX-License-Identifier: MIT
"""`dip process` on a batch writes its outputs on writer threads: every output is written and
renamed into place, a file that cannot be written is reported by name without stopping the
others, the summary counts it, and no temporary file is left behind."""
import os
import subprocess
import tempfile

import cv2
import numpy as np

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
ck = Checker()

with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(9)
    ins = []
    for i in range(12):
        p = os.path.join(d, "in%02d.png" % i)
        cv2.imwrite(p, rng.integers(0, 256, (40 + i, 64, 3), dtype=np.uint8))
        ins.append(p)
    out = os.path.join(d, "out")
    os.mkdir(out)
    # in05's output name is taken by a folder: its rename must fail, the others must not.
    os.mkdir(os.path.join(out, "in05.png"))
    r = subprocess.run([DIP, "process", "-p", "invert", "--threads", "2", "-o", out] + ins,
                       capture_output=True, text=True, timeout=300)
    ck.check(r.returncode != 0, "a failed write makes the exit status non-zero")
    ck.check("11 done, 1 failed" in r.stderr, "summary counts the failed write: %r" % r.stderr)
    ck.check("FAILED %s" % ins[5] in r.stderr and "rename" in r.stderr,
             "the failed write names its input and the reason: %r" % r.stderr)
    for i, p in enumerate(ins):
        if i == 5:
            continue
        got = cv2.imread(os.path.join(out, "in%02d.png" % i), cv2.IMREAD_UNCHANGED)
        want = 255 - cv2.imread(p, cv2.IMREAD_UNCHANGED)
        ck.check(got is not None and np.array_equal(got, want), "in%02d written and inverted" % i)
    ck.check(sorted(os.listdir(out)) == ["in%02d.png" % i for i in range(12)],
             "no temporary files left: %s" % sorted(os.listdir(out)))
    ck.check(sum(line.startswith("ok ") for line in r.stdout.splitlines()) == 11,
             "one 'ok' line per written file")
ck.done()
