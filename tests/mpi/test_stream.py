# SPDX-License-Identifier: MIT
"""A large image on the cluster is decoded and encoded in strips on the coordinator (JPEG, PNG,
TIFF) and the outputs are byte-identical to the local executor's and to the coordinator's
whole-image path (DIP_MPI_STREAM=0), for a one-step pipeline (read and written in strips) and,
for JPEG, a pipeline of every op kind (read in strips, written in strips after the global and
geometric steps); WebP falls back to the whole image; a JPEG written as PNG, TIFF and WebP.
test_stream_faults.py: memory, a cut-off file, a worker killed mid-image."""
import os

import cv2
import numpy as np

from diputil import SANITIZED
from mpiutil import PIPELINE, check, run_local, run_mpi, same_outputs, tmpdir

d = tmpdir()
# Under a sanitizer the coordinator's whole-image path (DIP_MPI_STREAM=0) runs for JPEG only: for
# PNG, TIFF and WebP it is the same path with another codec (which the codec tests run under
# ASan), and WebP is never streamed, so its two runs are the same.
# Over DIP_MPI_TILE_PIXELS (lowered here): a lone image is tiled.
tile_env = {"DIP_MPI_TILE_PIXELS": 1000000}


def make(path, w, h, seed):
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 32, w // 32, 3)) * 255).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = cv2.add(img, rng.integers(0, 16, size=img.shape, dtype=np.uint8))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    check(cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90]), "cannot write " + path)
    return path


one_step = "gaussian(size=5) | invert"
for ext, streams in (("jpg", True), ("png", True), ("tif", True), ("webp", False)):
    src = make(os.path.join(d, "in_%s" % ext, "large.%s" % ext), 1280, 900, 7)
    for pi, pipe in enumerate((one_step, PIPELINE) if ext == "jpg" else (one_step,)):
        ref = os.path.join(d, "local_%s_%d" % (ext, pi))
        run_local(pipe, [src], ref + "/")
        for stream in (1, 0) if ext == "jpg" or not SANITIZED else (1,):
            out = os.path.join(d, "mpi_%s_%d_%d" % (ext, pi, stream))
            r = run_mpi(3, pipe, [src], out + "/", DIP_MPI_STREAM=stream, **tile_env)
            check(r.returncode == 0 and " 0 failed" in r.stderr,
                  "%s pipeline %d stream=%d: exit %d" % (ext, pi, stream, r.returncode), r.stderr)
            check(" rows " in r.stderr, "%s: not split into tiles" % ext, r.stderr)
            how = "streamed in strips" if stream and streams else "decoded and encoded whole"
            check(how in r.stderr, "%s pipeline %d stream=%d: rank 0 did not say '%s'" %
                  (ext, pi, stream, how), r.stderr)
            bad = same_outputs(ref, out)
            check(not bad, "%s pipeline %d stream=%d: %s differ from the local run" %
                  (ext, pi, stream, bad), r.stderr)
        print("%s pipeline %d: identical to local, %s" %
              (ext, pi, "streamed" if SANITIZED and ext != "jpg" else "streamed and whole"))


# The output in another format: a streamed JPEG written as PNG and TIFF (row encoders) and WebP
# (the encoder keeps the rows and encodes them at the end).
src = os.path.join(d, "in_jpg", "large.jpg")
for fmt in ("png", "tiff", "webp"):
    ref = os.path.join(d, "local_to_%s" % fmt)
    run_local(one_step, [src], ref + "/", extra=("-f", fmt))
    out = os.path.join(d, "mpi_to_%s" % fmt)
    r = run_mpi(3, one_step, [src], out + "/", extra=("-f", fmt), **tile_env)
    check(r.returncode == 0 and " 0 failed" in r.stderr, "jpg to %s failed" % fmt, r.stderr)
    check("streamed in strips" in r.stderr, "jpg to %s was not streamed" % fmt, r.stderr)
    bad = same_outputs(ref, out)
    check(not bad, "jpg to %s: %s differ from the local run" % (fmt, bad), r.stderr)
    print("jpg to %s: identical to local" % fmt)
