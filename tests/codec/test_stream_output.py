# SPDX-License-Identifier: MIT
"""`dip process` with one image to a local file writes the PNG while it is encoded (the encoder's
threads append each finished piece to the temporary file, which is committed with fsync and
rename at the end), and other single outputs (TIFF) on the executor's thread: the file must be
the same bytes at 1, 2 and 3 threads (and two tile sizes for PNG), decode to the expected pixels,
be the same as when the file is written whole by a batch's writer threads, leave no temporary
behind, and a folder that cannot be written must give a clear error."""
import os
import subprocess
import sys
import tempfile

try:
    import cv2
    import numpy as np
except ImportError:
    print("needs python3-opencv and python3-numpy; skipped")
    sys.exit(77)

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
ck = Checker()


def dip(*args):
    return subprocess.run([DIP] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300)


def photo_like(h, w):
    """Smooth gradients, texture and hard edges: deflate cannot shrink it to nothing."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 255 // (w + h))], axis=2)
    noise = rng.integers(0, 24, size=(h, w, 3))
    img = (base + noise).astype(np.uint8)
    img[(x // 97 + y // 61) % 2 == 1] ^= 0xFF
    return img


with tempfile.TemporaryDirectory() as d:
    # 1700x2100 RGB: 10.7 MB of filtered rows, three PNG pieces (4 MiB each).
    src = photo_like(2100, 1700)
    ppm = os.path.join(d, "in.ppm")
    ck.check(cv2.imwrite(ppm, src), "write the PPM")
    for level in (1, 6):
        ref = None
        for tile in (0, 64):
            for threads in (1, 2, 3):
                out = os.path.join(d, "out-%d-%d-%d.png" % (level, tile, threads))
                args = ["process", "--quiet", "--device", "cpu", "-p", "invert", "--png-level",
                        level, "--threads", threads, "-o", out, ppm]
                if tile:
                    args[1:1] = ["--tile", tile]
                r = dip(*args)
                ck.check(r.returncode == 0, "level %d tile %d threads %d: %s" %
                         (level, tile, threads, r.stderr.strip()))
                data = open(out, "rb").read()
                if ref is None:
                    ref = data
                    back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
                    ck.check(back is not None and np.array_equal(back, 255 - src),
                             "level %d: the file decodes (OpenCV) to the inverted input" % level)
                ck.check(data == ref, "level %d tile %d threads %d: the same bytes as 1 thread"
                         % (level, tile, threads))
                ck.check(oct(os.stat(out).st_mode & 0o777) == oct(0o644),
                         "the file's mode is 0644 as for a file written whole")
        # The same image in a batch of two is written whole by the writer threads: same bytes.
        ppm2 = os.path.join(d, "in2.ppm")
        ck.check(cv2.imwrite(ppm2, src[:100]), "write a second PPM")
        outdir = os.path.join(d, "batch-%d" % level)
        r = dip("process", "--quiet", "--device", "cpu", "-p", "invert", "--png-level", level,
                "--format", "png", "-o", outdir, ppm, ppm2)
        ck.check(r.returncode == 0, "batch: %s" % r.stderr.strip())
        ck.check(open(os.path.join(outdir, "in.png"), "rb").read() == ref,
                 "level %d: the streamed file is the batch's file" % level)
    # A single TIFF (no pieces handed out: written whole on the executor's thread, not copied to
    # a writer thread) and the same image in a batch: the same bytes at 1, 2 and 3 threads.
    ref = None
    for threads in (1, 2, 3):
        out = os.path.join(d, "out-%d.tif" % threads)
        r = dip("process", "--quiet", "--device", "cpu", "-p", "invert", "--threads", threads,
                "-o", out, ppm)
        ck.check(r.returncode == 0, "tiff threads %d: %s" % (threads, r.stderr.strip()))
        data = open(out, "rb").read()
        if ref is None:
            ref = data
            back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
            ck.check(back is not None and np.array_equal(back, 255 - src),
                     "tiff: the file decodes (OpenCV) to the inverted input")
        ck.check(data == ref, "tiff threads %d: the same bytes as 1 thread" % threads)
    outdir = os.path.join(d, "batch-tif")
    r = dip("process", "--quiet", "--device", "cpu", "-p", "invert", "--format", "tiff", "-o",
            outdir, ppm, ppm2)
    ck.check(r.returncode == 0 and open(os.path.join(outdir, "in.tif"), "rb").read() == ref,
             "tiff: the single file is the batch's file: %s" % r.stderr.strip())
    left = [f for f in os.listdir(d) if ".tmp." in f]
    ck.check(not left, "no temporary file left: %s" % left)

    # A folder that does not exist: the stream cannot open its temporary, the usual write then
    # names the path in its error; nothing crashes and nothing is left.
    bad = os.path.join(d, "no-such-folder", "out.png")
    r = dip("process", "--quiet", "--device", "cpu", "-p", "invert", "-o", bad, ppm)
    ck.check(r.returncode != 0 and "out.png" in r.stderr and "temporary" in r.stderr,
             "unwritable output: exit %d, %s" % (r.returncode, r.stderr.strip()))

ck.done()
