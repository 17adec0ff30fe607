# SPDX-License-Identifier: MIT
"""A one-worker cluster must use all the worker's threads. Open MPI 4 binds each rank to one core
when there are no more ranks than cores, so under a plain `mpirun -np 2` the worker's two threads
shared one core and the job ran at one core's speed (a 600-image batch: 16.4 s against 7.7 s for
the local executor on the same two threads). `dip mpirun` now passes --bind-to none unless the
user chose a binding, and a worker whose threads outnumber the cores it may use says so once.
Checked through the worker's own affinity (what it reports), not by timing."""
import os
import subprocess
import sys

from mpiutil import DIP, MPIEXEC, check, env, make_images, mpi_cmd, run_local, same_outputs, tmpdir

if len(os.sched_getaffinity(0)) < 2:
    print("SKIP: needs two cores")
    sys.exit(77)

d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 6, 320, 240, seed=5)
pipe = "gaussian(size=5) | sharpen"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
WARN = "only 1 core(s) allowed"

# Bound explicitly (Open MPI's default for -np 2 on two or more cores): the worker warns.
out = os.path.join(d, "bound") + "/"
r = subprocess.run(mpi_cmd(2, pipe, inputs, out, extra=("-t", "2"), mpi_extra=("--bind-to", "core")),
                   capture_output=True, text=True, errors="backslashreplace", timeout=200,
                   env=env())
text = r.stderr + r.stdout
check(r.returncode == 0, "bound run exited %d" % r.returncode, text)
check(WARN in text and "--bind-to none" in text, "no warning from a worker bound to one core", text)
check(text.count(WARN) == 1, "the warning is said once: %d" % text.count(WARN), text)
check(not same_outputs(os.path.join(d, "local"), out), "bound run's outputs differ", text)

# dip mpirun, no binding given: the worker may use every core, and says nothing.
out = os.path.join(d, "dipmpirun") + "/"
cmd = [DIP, "mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp",
       "-np", "2", DIP, "process", "-t", "2", "-p", pipe, "-o", out, *inputs]
r = subprocess.run(cmd, capture_output=True, text=True, errors="backslashreplace", timeout=200,
                   env=env(DIP_MPIRUN=MPIEXEC))
text = r.stderr + r.stdout
check(r.returncode == 0, "dip mpirun exited %d" % r.returncode, text)
check(WARN not in text and "core(s) allowed" not in text,
      "dip mpirun left the worker bound to a core", text)
check(not same_outputs(os.path.join(d, "local"), out), "dip mpirun's outputs differ", text)
print("ok: a bound worker warns once; dip mpirun runs it unbound")
