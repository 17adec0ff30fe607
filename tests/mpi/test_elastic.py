# SPDX-License-Identifier: MIT
"""Elasticity: started with one worker and a backlog, the coordinator spawns workers
(MPI_Comm_spawn of dip itself) up to --max-workers; each spawned worker gets tasks at once, the
summary shows every one of them did work, and the outputs are those of the local executor.

The backlog must outlast two spawns (the second comes at least 0.5 s after the first, and only
while 5 tasks a worker are still queued): with the test hooks every image takes 150 ms more on
the workers (DIP_TEST_ITEM_SLEEP_MS), so the job lasts ~1.5 s at any machine speed; without them
a heavier job. (36 images of ~0.08 s with no sleep ended after one spawn once workers held
threads + 2 tasks instead of threads + 1.)"""
import os

from mpiutil import check, make_images, run_local, run_mpi, same_outputs, tmpdir, worker_table

d = tmpdir()
hooks = bool(os.environ.get("DIP_TEST_HOOKS"))
inputs = make_images(os.path.join(d, "in"), 36 if hooks else 72, 640, 480, seed=8)
pipe = "median(size=7) | gaussian(size=7) | equalize"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
r = run_mpi(2, pipe, inputs, out + "/", extra=("--max-workers", "3"),
            **({"DIP_TEST_ITEM_SLEEP_MS": "150"} if hooks else {}))
text = r.stderr + r.stdout
print(text[-2500:])
check(r.returncode == 0, "mpirun exited %d" % r.returncode, text)
check(text.count("spawned worker") == 2, "expected two spawned workers", text)
table = worker_table(text)
check(sorted(table) == [1, 2, 3], "expected workers 1, 2, 3 in the summary: %s" % table, text)
for w, (state, tasks) in table.items():
    check(state == "alive" and tasks > 0, "worker %d: %s, %d tasks" % (w, state, tasks), text)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ or are missing: %s" % bad, text)
print("ok: %s (%.1f s)" % (table, r.seconds))
