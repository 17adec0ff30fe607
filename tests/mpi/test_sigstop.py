# SPDX-License-Identifier: MIT
"""SIGSTOP of a worker mid-job: it stops sending heartbeats, is declared lost, its tasks go to the
live worker, the job completes with byte-identical outputs, and mpirun ends in bounded time (the
coordinator ends the stopped rank, which would otherwise keep mpirun waiting)."""
import os
import signal
import time

from mpiutil import (check, fault_job, kill_group, last_output_age, rank_pids,
                     run_local, same_outputs, start_mpi, tmpdir, wait_for, worker_table)

d = tmpdir()
# A job that outlasts the fault (mpiutil.fault_job).
inputs, pipe, slow = fault_job(d, 6)
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
log = os.path.join(d, "log")
p = start_mpi(3, pipe, inputs, out + "/", log, DIP_MPI_LOST_S=3, **slow)
stopped = None
try:
    ranks = rank_pids(p.pid, want=3)
    check(2 in ranks, "rank 2 not found: %s" % ranks)
    check(wait_for(lambda: os.path.isdir(out) and len(os.listdir(out)) >= 2, 60),
          "no output appeared", open(log).read())
    stopped = ranks[2]
    os.kill(stopped, signal.SIGSTOP)
    t_stop = time.time()
    rc = p.wait(timeout=150)
    t_end = time.time()
finally:
    if stopped:
        try:
            os.kill(stopped, signal.SIGCONT)
        except OSError:
            pass
    kill_group(p)
text = open(log).read()
print(text[-3000:])
check(rc == 0, "mpirun exited %s" % rc, text)
check("rank 2 (" in text and "lost" in text, "rank 2 was not declared lost", text)
tail = last_output_age(out, t_end)
check(tail <= 10, "mpirun ended %.1f s after the last output (limit 10 s)" % tail, text)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ or are missing: %s" % bad, text)
table = worker_table(text)
check(table.get(2, ("?",))[0] == "LOST", "rank 2 not listed as lost: %s" % table, text)
check(table.get(1, ("?",))[0] == "alive", "rank 1 should have stayed alive: %s" % table, text)
print("ok: mpirun ended %.1f s after the SIGSTOP" % (t_end - t_stop))
