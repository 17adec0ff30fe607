# SPDX-License-Identifier: MIT
"""One executor serving several jobs (as dip serve does): the first job's backlog spawns workers
up to the maximum, the spawned workers idle between jobs are released (DIP_MPI_IDLE_S=0) and
spawned again by the next job's backlog, and every job's outputs equal the local executor's."""
import os
import subprocess

from mpiutil import MPIEXEC, check, env, make_images, run_local, same_outputs, tmpdir

drv = os.environ["DIP_MPI_JOBS"]
d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 24, 480, 360, seed=10)
pipe = "median(size=5) | gaussian(size=5) | equalize"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "out")
os.makedirs(out)
r = subprocess.run([MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
                    "-np", "2", drv, pipe, out, "2", "2", *inputs], capture_output=True, text=True,
                   timeout=200, env=env(DIP_MPI_IDLE_S=0))
text = r.stderr + r.stdout
print(text[-3000:])
check(r.returncode == 0 and "0 failed" in r.stdout, "driver failed (%d)" % r.returncode, text)
check(text.count("spawned worker") == 2, "expected a spawn in each job", text)
check("released idle worker 2" in text, "the idle spawned worker was not released", text)
for j in (0, 1):
    bad = same_outputs(os.path.join(d, "local"), os.path.join(out, str(j)))
    check(not bad, "job %d: outputs differ: %s" % (j, bad), text)
print("ok")
