# SPDX-License-Identifier: MIT
"""A large image on the cluster is decoded and encoded in strips on the coordinator (JPEG, PNG,
TIFF) and the outputs are byte-identical to the local executor's and to the coordinator's
whole-image path (DIP_MPI_STREAM=0), for a one-step pipeline (read and written in strips) and a
pipeline of every op kind (read in strips); WebP falls back to the whole image. Rank 0's peak RSS
with streaming stays below the whole-image path's by more than one decoded image. A file cut off
half-way fails that image with the decoder's message, with no output and nothing left behind. A
worker SIGKILLed while it holds tiles of a streamed image: its tiles go to the other worker with
the input rows they need (kept until every tile that needs them is done), same bytes."""
import os

import cv2
import numpy as np

import signal

from mpiutil import (PIPELINE, check, kill_group, rank_pids, run_local, run_mpi, same_outputs,
                     start_mpi, tmpdir, wait_for, worker_table)

d = tmpdir()
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


def peak_mib(stderr):
    for line in stderr.splitlines():
        if "rank 0 peak RSS" in line:
            return int(line.rsplit("RSS", 1)[1].split()[0])
    return None


one_step = "gaussian(size=5) | invert"
for ext, streams in (("jpg", True), ("png", True), ("tif", True), ("webp", False)):
    src = make(os.path.join(d, "in_%s" % ext, "large.%s" % ext), 1500, 1000, 7)
    for pi, pipe in enumerate((one_step, PIPELINE)):
        ref = os.path.join(d, "local_%s_%d" % (ext, pi))
        run_local(pipe, [src], ref + "/")
        outs = {}
        for stream in (1, 0):
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
        print("%s pipeline %d: identical to local, streamed and whole" % (ext, pi))

# Rank 0's memory: a 4000 x 3000 RGB image is 34 MiB decoded; the whole-image path holds the
# input and the output at once, the streamed one neither.
big = make(os.path.join(d, "rss", "big.jpg"), 4000, 3000, 11)
peaks = {}
for stream in (1, 0):
    out = os.path.join(d, "rss_out_%d" % stream)
    r = run_mpi(3, one_step, [big], out + "/", DIP_MPI_STREAM=stream, **tile_env)
    check(r.returncode == 0 and " 0 failed" in r.stderr, "rss run stream=%d failed" % stream,
          r.stderr)
    peaks[stream] = peak_mib(r.stderr)
    check(peaks[stream] is not None, "no peak RSS line", r.stderr)
image_mib = 4000 * 3000 * 3 / 2**20
print("rank 0 peak RSS: streamed %d MiB, whole %d MiB (one decoded image: %.0f MiB)" %
      (peaks[1], peaks[0], image_mib))
if os.environ.get("ASAN_OPTIONS") is None:
    # (Under ASan freed memory stays in its quarantine, so RSS says nothing there.)
    check(peaks[1] + image_mib < peaks[0],
          "streaming saved less than one decoded image: %d vs %d MiB" % (peaks[1], peaks[0]))
check(not same_outputs(os.path.join(d, "rss_out_1"), os.path.join(d, "rss_out_0")),
      "streamed and whole outputs differ")

# Cut off half-way: the rows past the cut cannot be decoded; the image fails with the
# decoder's message, nothing is written and no temporary file stays.
cut = os.path.join(d, "cut", "cut.jpg")
os.makedirs(os.path.dirname(cut))
data = open(big, "rb").read()
open(cut, "wb").write(data[:len(data) * 6 // 10])
out = os.path.join(d, "cut_out")
r = run_mpi(3, one_step, [cut], out + "/", **tile_env)
check("0 done, 1 failed" in r.stderr, "the cut file did not fail", r.stderr)
check("jpeg: premature end of data" in r.stderr, "no decoder message", r.stderr)
check("streamed in strips" in r.stderr, "the cut file was not streamed", r.stderr)
left = os.listdir(out) if os.path.isdir(out) else []
check(not left, "files left after a failed image: %s" % left, r.stderr)
print("ok: a cut-off file fails with the decoder's message")

# A worker killed mid-image: the tiles it held are built again from rows still kept.
slow = "median(size=11) | invert"
ref = os.path.join(d, "kill_local")
run_local(slow, [big], ref + "/")
out = os.path.join(d, "kill_mpi")
log = os.path.join(d, "kill_log")
p = start_mpi(3, slow, [big], out + "/", log, extra=("-t", "1"), DIP_MPI_LOST_S=2, **tile_env)
try:
    ranks = rank_pids(p.pid, want=3)
    check(1 in ranks, "rank 1 not found: %s" % ranks)
    check(wait_for(lambda: open(log).read().count("rank 1: image") >= 3, 60),
          "rank 1 never computed a tile", open(log).read())
    os.kill(ranks[1], signal.SIGKILL)
    rc = p.wait(timeout=150)
finally:
    kill_group(p)
text = open(log).read()
check("streamed in strips" in text, "the image was not streamed", text)
check(" 0 failed" in text, "the image failed after the kill", text)
table = worker_table(text)
check(table.get(1, ("?",))[0] == "LOST", "rank 1 not listed as lost: %s" % table, text)
bad = same_outputs(ref, out)
check(not bad, "after the kill: %s differ from the local run" % bad, text)
print("ok: a worker killed mid-image, same bytes")
