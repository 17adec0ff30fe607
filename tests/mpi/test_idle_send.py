# SPDX-License-Identifier: MIT
"""A worker whose results wait for the coordinator must not spin. Its MPI thread used to poll
every 20 us while any send was in flight ("large messages move only while both sides poll"), so
for as long as the coordinator had not taken a result the worker woke tens of thousands of times
a second, taking a core's share from its compute threads on a shared machine (issue 14: a
one-worker cluster 34% behind the local executor). It now naps on a condition variable its
compute threads signal and backs off to 1 ms while a transfer is in flight. Checked by the
worker's MPI thread's own count of voluntary context switches (each nap is one) while rank 0 is
stopped with results on their way to it; then rank 0 resumes and the job ends with the local
executor's bytes."""
import os
import signal
import time

from mpiutil import (check, kill_group, make_images, rank_pids, run_local, same_outputs, start_mpi,
                     tmpdir, wait_for)

LIMIT = 2500  # naps per second: at most ~1000 now (1 ms), tens of thousands before


def switches(pid):
    for line in open("/proc/%d/status" % pid):  # the main thread: the worker's MPI thread
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return 0


d = tmpdir()
# 640x480 PNGs with noise: every result is hundreds of KB, sent in fragments that move only as
# the coordinator takes them.
inputs = make_images(os.path.join(d, "in"), 24, 640, 480, seed=21)
pipe = "gaussian(size=3)"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
log = os.path.join(d, "log")
p = start_mpi(2, pipe, inputs, out + "/", log, extra=("-t", "2"), DIP_MPI_LOST_S=30)
stopped = None
rate = None
try:
    ranks = rank_pids(p.pid, want=2)
    check(0 in ranks and 1 in ranks, "ranks not found: %s" % ranks)
    check(wait_for(lambda: os.path.isdir(out) and len(os.listdir(out)) >= 2, 60),
          "no output appeared", open(log).read())
    stopped = ranks[0]
    os.kill(stopped, signal.SIGSTOP)
    time.sleep(1.5)  # the worker finishes the tasks it holds; their results wait for rank 0
    c0, t0 = switches(ranks[1]), time.time()
    time.sleep(2.0)
    c1, t1 = switches(ranks[1]), time.time()
    rate = (c1 - c0) / (t1 - t0)
    os.kill(stopped, signal.SIGCONT)
    stopped = None
    rc = p.wait(timeout=150)
finally:
    if stopped:
        os.kill(stopped, signal.SIGCONT)
    kill_group(p)
text = open(log).read()
print("worker MPI thread: %.0f wake-ups/s while rank 0 was stopped" % rate)
check(rc == 0, "mpirun exited %s" % rc, text)
check(rate < LIMIT, "the worker woke %.0f times a second waiting for rank 0 (limit %d)" %
      (rate, LIMIT), text)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ or are missing: %s" % bad, text)
print("ok")
