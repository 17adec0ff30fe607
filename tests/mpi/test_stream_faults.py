# SPDX-License-Identifier: MIT
"""A large image streamed through the coordinator (see test_stream.py), under faults and for
memory: rank 0's peak RSS with streaming stays below the whole-image path's by more than one
decoded image (DIP_MPI_STREAM=0 for the comparison); a JPEG cut off half-way fails that image
with the decoder's message, nothing written; a worker SIGKILLed while it holds tiles of a
streamed image: its tiles go to the other worker with the input rows they need (kept until every
tile that needs them is done), and the output is byte-identical to the local executor's."""
import os
import signal

import cv2
import numpy as np

from diputil import SANITIZED
from mpiutil import (check, kill_group, rank_pids, run_local, run_mpi, same_outputs, start_mpi,
                     tmpdir, wait_for, worker_table)

d = tmpdir()
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
# Smaller under ASan (several times slower; its quarantine keeps freed memory, so RSS says
# nothing there and the memory check is skipped).
W, H = (2000, 1500) if SANITIZED else (6000, 4000)
# Rank 0's memory: a 6000 x 4000 RGB image is 69 MiB decoded; the whole-image path holds the
# input and the output at once, the streamed one neither. (At 4000 x 3000, 34 MiB, the margin
# was the allocator's noise: with buffers of up to 32 MiB kept in the heap (src/cli/main.c,
# tune_malloc) rank 0's streamed peak is 46 to 59 MiB from run to run, against 96 MiB whole.)
big = make(os.path.join(d, "rss", "big.jpg"), W, H, 11)
peaks = {}
for stream in (1, 0):
    out = os.path.join(d, "rss_out_%d" % stream)
    r = run_mpi(3, one_step, [big], out + "/", DIP_MPI_STREAM=stream, **tile_env)
    check(r.returncode == 0 and " 0 failed" in r.stderr, "rss run stream=%d failed" % stream,
          r.stderr)
    peaks[stream] = peak_mib(r.stderr)
    check(peaks[stream] is not None, "no peak RSS line", r.stderr)
image_mib = W * H * 3 / 2**20
print("rank 0 peak RSS: streamed %d MiB, whole %d MiB (one decoded image: %.0f MiB)" %
      (peaks[1], peaks[0], image_mib))
if not SANITIZED:
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
slow = "median(size=11) | invert" if not SANITIZED else "median(size=7) | invert"
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
