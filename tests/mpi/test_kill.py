# SPDX-License-Identifier: MIT
"""kill -9 of a worker mid-job: the job completes, mpirun exits 0, the outputs are byte-identical
to the local executor's, and the summary lists the worker as lost."""
import os
import signal
import time

from mpiutil import (check, fault_job, kill_group, last_output_age, rank_pids,
                     run_local, same_outputs, start_mpi, tmpdir, wait_for, worker_table)

d = tmpdir()
# A job that outlasts the fault (mpiutil.fault_job).
inputs, pipe, slow = fault_job(d, 5)
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
log = os.path.join(d, "log")
p = start_mpi(3, pipe, inputs, out + "/", log, DIP_MPI_LOST_S=3, **slow)
try:
    ranks = rank_pids(p.pid, want=3)
    check(1 in ranks, "rank 1 not found: %s" % ranks)
    check(wait_for(lambda: os.path.isdir(out) and len(os.listdir(out)) >= 2, 60),
          "no output appeared", open(log).read())
    os.kill(ranks[1], signal.SIGKILL)
    killed = time.time()
    rc = p.wait(timeout=150)
    t_end = time.time()
finally:
    kill_group(p)
text = open(log).read()
print(text[-3000:])
check(rc == 0, "mpirun exited %s" % rc, text)
tail = last_output_age(out, t_end)
check(tail <= 10, "mpirun ended %.1f s after the last output (limit 10 s)" % tail, text)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ or are missing: %s" % bad, text)
table = worker_table(text)
check(table.get(1, ("?",))[0] == "LOST", "rank 1 not listed as lost: %s" % table, text)
check(table.get(2, ("?", 0)) [0] == "alive" and table[2][1] > 0,
      "rank 2 should be alive and have worked: %s" % table, text)
print("ok: completed %.1f s after the kill" % (time.time() - killed))
