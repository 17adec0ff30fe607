# SPDX-License-Identifier: MIT
"""A spawn that never returns ends the run instead of hanging it. MPI_Comm_spawn has no timeout,
and with Debian 12's Open MPI 4.1.4 and PMIx 4.2 it now and then never returns (seen in
mpi/test_cluster_key under load: the new worker waited for ever in PMIx_Init, rank 0 in the
spawn, and the test's driver ran into its 200 s timeout). The test build's hook
DIP_TEST_SPAWN_HANG makes rank 0 spawn a process that never joins (`sleep`), as in that hang:
with DIP_MPI_SPAWN_S=3, `dip mpirun` must end within seconds with status 7 (the coordinator
died), rank 0 must say why, the outputs written before must be complete images, and no process
of the run may be left behind."""
import os
import subprocess
import time

import cv2

from mpiutil import DIP, MPIEXEC, check, env, make_images, need_hooks, tmpdir

need_hooks()
d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 30, 480, 360, seed=31)
out = os.path.join(d, "out")
# A backlog of 30 tasks for one worker: the coordinator spawns up to --max-workers 2 at once.
cmd = [DIP, "mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp",
       "-np", "2", DIP, "process", "--max-workers", "2", "-p",
       "median(size=5) | gaussian(size=5)", "-o", out + "/", *inputs]
t0 = time.time()
run_id = "%d-%d" % (os.getpid(), time.time_ns())  # every process of the run inherits it
mark = ("DIP_TEST_RUN=" + run_id).encode()
r = subprocess.run(cmd, capture_output=True, text=True, errors="backslashreplace", timeout=200,
                   env=env(DIP_MPIRUN=MPIEXEC, DIP_TEST_SPAWN_HANG=1, DIP_MPI_SPAWN_S=3,
                           DIP_TEST_RUN=run_id))
took = time.time() - t0
text = r.stderr + r.stdout
check("MPI_Comm_spawn has not returned in 3 s" in text, "rank 0 did not say why it ended", text)
check(r.returncode == 7, "dip mpirun exited %d, expected 7 (the coordinator died)" % r.returncode,
      text)
# 3 s of spawn, then the launch's end: the workers' orphan limit (10 s) at most, and dip mpirun's.
check(took < 40, "the run took %.1f s to end after a stuck spawn" % took, text)
written = sorted(os.listdir(out)) if os.path.isdir(out) else []
for n in written:
    if ".tmp." in n:
        continue  # an output interrupted mid-write keeps its temporary name; the next run removes it
    img = cv2.imread(os.path.join(out, n), cv2.IMREAD_UNCHANGED)
    check(img is not None and img.shape[:2] == (360, 480), "%s is not a whole image" % n, text)
time.sleep(1)
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        environ = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
        cmdline = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        continue
    check(mark not in environ or int(pid) == os.getpid(),
          "a process of the run outlived it: pid %s, %s" % (pid, cmdline), text)
print("ok: ended %.1f s after the start, status 7, %d outputs written before, all whole" %
      (took, len(written)))
