# SPDX-License-Identifier: MIT
"""kill -9 of the coordinator (rank 0) mid-job on one machine, under plain mpirun: the workers
notice the silence within DIP_MPI_ORPHAN_S (3 s here), or a failed receive at once, and leave,
so mpirun exits within 10 s of the kill (it waited 60 s when the orphan limit was hard-coded and
the variable had no effect)."""
import os
import signal
import time

from mpiutil import (PIPELINE, check, kill_group, make_images, rank_pids, start_mpi, tmpdir,
                     wait_for)

d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 30, 640, 480, seed=12)
out = os.path.join(d, "mpi")
log = os.path.join(d, "log")
p = start_mpi(3, "median(size=5) | " + PIPELINE, inputs, out + "/", log, DIP_MPI_LOST_S=3,
              DIP_MPI_ORPHAN_S=3)
try:
    ranks = rank_pids(p.pid, want=3)
    check(0 in ranks, "rank 0 not found: %s" % ranks)
    check(wait_for(lambda: os.path.isdir(out) and len(os.listdir(out)) >= 2, 60),
          "no output appeared", open(log).read())
    os.kill(ranks[0], signal.SIGKILL)
    killed = time.time()
    try:
        p.wait(timeout=120)
    except Exception:
        pass
    took = time.time() - killed
finally:
    kill_group(p)
text = open(log).read()
print(text[-2000:])
check(p.poll() is not None, "mpirun still runs 120 s after the coordinator was killed", text)
# A worker notices either the silence or, when it was receiving from rank 0, the failed receive
# (MPI reports it since the transport's failures reach the worker loop).
check("no word from the coordinator" in text or "lost the coordinator mid-message" in text,
      "the workers did not notice the silence", text)
check(took <= 10, "mpirun exited %.1f s after the coordinator was killed (limit 10 s)" % took, text)
print("ok: mpirun exited %.1f s after the coordinator was killed" % took)
