# SPDX-License-Identifier: MIT
"""`dip bench` on several input files: one block of CSV rows per file, its suite named after the
file; the synthetic image without inputs; a file that cannot be read is named in the error."""
import os
import subprocess
import tempfile

import cv2
import numpy as np

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
ck = Checker()


def dip(*args):
    return subprocess.run([DIP] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120)


def rows(out):
    return [line.split(",") for line in out.splitlines()[1:] if line]


with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(5)
    a, b = os.path.join(d, "first.png"), os.path.join(d, "second-gray.pgm")
    cv2.imwrite(a, rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    cv2.imwrite(b, rng.integers(0, 256, (30, 20), dtype=np.uint8))

    r = dip("bench", "--runs", "2", "--threads", "2", "--ops", "invert,canny", "--input", a, b)
    got = rows(r.stdout)
    ck.check(r.returncode == 0, "bench on two files exits 0: %s" % r.stderr)
    ck.check(r.stdout.startswith("suite,op,impl,threads,size,runs,median,min,max,rate\n"),
             "bench prints the CSV header once")
    want = [(s, op, t, size) for s, size in [("first", "64x48"), ("second-gray", "20x30")]
            for op in ["invert", "canny"] for t in ["1", "2"]]
    ck.check([(x[0], x[1], x[3], x[4]) for x in got] == want,
             "one row per file, op and thread count, suite named after the file: %s" % got)
    ck.check(all(len(x) == 10 and x[2] == "dip" and float(x[9]) > 0 for x in got),
             "every row has 10 fields and a positive rate")

    r = dip("bench", "--runs", "1", "--threads", "1", "--ops", "gray", "--suite", "mine", a)
    ck.check([x[0] for x in rows(r.stdout)] == ["mine"], "--suite names a single input's rows")

    r = dip("bench", "--runs", "1", "--threads", "1", "--ops", "flip", "--width", "40",
            "--height", "30")
    ck.check(r.returncode == 0 and [(x[0], x[4]) for x in rows(r.stdout)] == [("ops", "40x30")],
             "without inputs: the synthetic image, suite 'ops'")

    missing = os.path.join(d, "missing.png")
    r = dip("bench", "--runs", "1", "--ops", "invert", a, missing)
    ck.check(r.returncode != 0 and "missing.png" in r.stderr,
             "an unreadable input is named in the error: %r" % r.stderr)
ck.done()
