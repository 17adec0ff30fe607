# SPDX-License-Identifier: MIT
"""A worker stopped mid-send must not freeze the coordinator. The test-only hook DIP_TEST_STALL
makes a worker stop itself (SIGSTOP) about 2 ms after it starts sending the large result of the
marked input. Until the stopped worker is declared lost (DIP_MPI_LOST_S), the coordinator must go
on handing out tasks and writing the other worker's outputs. (Whether the head of the message has
reached the coordinator by then is up to Open MPI's TCP transport; in runs here it had not, so
this checks the loop goes on, not the stuck-receive deadline itself.) The marked input stops
every worker that computes it, so in the end rank 0 runs the rest itself, and says so once.
Every output is the local executor's bytes."""
import os
import time

from mpiutil import (check, kill_group, make_images, need_hooks, png_with_text, rank_pids,
                     run_local, same_outputs, start_mpi, tmpdir, wait_for)

need_hooks()
d = tmpdir()
# Enough small inputs that the other worker still has work after the stall: while one worker
# computes the large input (0.7 s), the other finishes some 40 small ones; with 60 in all, an idle
# machine once left it nothing to write during the stall ("0 outputs in 5.0 s").
inputs = make_images(os.path.join(d, "in"), 150, 640, 480, seed=13)
# The marked input is large (a result of megabytes), so its transfer takes many fragments.
big = make_images(os.path.join(d, "in"), 1, 2000, 1500, seed=14, prefix="big")[0]
inputs[1:2] = [big]
png_with_text(big, "dip-stall-marker")
pipe = "median(size=5) | gaussian(size=5)"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
log = os.path.join(d, "log")
# TCP between the ranks, as between machines: the message's head (which the coordinator
# matches) goes out at once, the rest only while the sender runs.
p = start_mpi(3, pipe, inputs, out + "/", log, mpi_extra=("--mca", "btl", "self,tcp"),
              DIP_MPI_LOST_S=5, DIP_TEST_STALL="dip-stall-marker")


def state(pid):
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


try:
    ranks = rank_pids(p.pid, want=3)
    check(1 in ranks and 2 in ranks, "workers not found: %s" % ranks)
    stopped = {}
    t_lost = None
    deadline = time.time() + 150
    while p.poll() is None and time.time() < deadline:
        for r in (1, 2):
            if r not in stopped and state(ranks[r]) == "T":
                stopped[r] = time.time()
        if t_lost is None and " lost: " in open(log).read():
            t_lost = time.time()
        time.sleep(0.02)
    rc = p.wait(timeout=30)
finally:
    kill_group(p)
text = open(log).read()
print("\n".join(l for l in text.splitlines() if not l.startswith("ok "))[-3000:])
check(rc == 0, "mpirun exited %s" % rc, text)
check(stopped and t_lost, "no worker stopped mid-transfer (%s) or none was lost" % stopped, text)
t_stop = min(stopped.values())
during = [n for n in os.listdir(out)
          if t_stop + 0.2 < os.path.getmtime(os.path.join(out, n)) < t_lost]
print("outputs written while a result was stuck (%.1f s): %d" % (t_lost - t_stop, len(during)))
check(len(during) >= 2, "the coordinator froze while a result was stuck: %d outputs in %.1f s"
      % (len(during), t_lost - t_stop), text)
check(text.count("no worker left") <= 1, "'no worker left' printed %d times"
      % text.count("no worker left"), text)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ or are missing: %s" % bad, text)
print("ok")
