# SPDX-License-Identifier: MIT
"""One executor serving several jobs (as dip serve does). By default the first job's backlog
spawns a worker (up to the maximum) and the spawned worker stays for the later jobs: it works in
each of them and is never spawned again (a spawn after a release is where Open MPI 4.1's spawn
hang was seen: docs/cluster.md). With DIP_MPI_IDLE_S=0 an idle spawned worker is released
between jobs, and a later job too small to call for another worker runs without it. Every job's
outputs equal the local executor's."""
import os
import re
import subprocess

from mpiutil import MPIEXEC, check, env, make_images, run_local, same_outputs, tmpdir

drv = os.environ["DIP_MPI_JOBS"]
d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 24, 480, 360, seed=10)
pipe = "median(size=5) | gaussian(size=5) | equalize"
run_local(pipe, inputs, os.path.join(d, "local") + "/")


def jobs(name, n, **extra):
    out = os.path.join(d, name)
    os.makedirs(out)
    r = subprocess.run([MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
                        "-np", "2", drv, pipe, out, str(n), "2", *inputs], capture_output=True,
                       text=True, timeout=200, env=env(**extra))
    text = r.stderr + r.stdout
    print(text[-3000:])
    check(r.returncode == 0 and "0 failed" in r.stdout, "%s: driver failed (%d)" % (name, r.returncode),
          text)
    return out, text


def tasks(text, job, worker):
    m = re.search(r"job %d worker %d (\w+) tasks (\d+)" % (job, worker), text)
    return (m.group(1), int(m.group(2))) if m else (None, 0)


# Kept: one spawn, and the spawned worker (2) works in every job.
out, text = jobs("kept", 3)
check(text.count("spawned worker") == 1, "expected one spawn in three jobs", text)
check("released" not in text, "a spawned worker was released without DIP_MPI_IDLE_S", text)
seen = [tasks(text, j, 2) for j in range(3)]
check(all(s == "alive" for s, _ in seen) and seen[0][1] < seen[1][1] < seen[2][1],
      "the spawned worker did not work in every job: %s" % seen, text)
for j in range(3):
    bad = same_outputs(os.path.join(d, "local"), os.path.join(out, str(j)))
    check(not bad, "job %d: outputs differ: %s" % (j, bad), text)

# Released: DIP_MPI_IDLE_S=0, and a second job of 2 images (under 5 queued tasks per worker).
out, text = jobs("released", 2, DIP_MPI_IDLE_S=0, MPI_JOBS_LATER=2)
check(text.count("spawned worker") == 1, "expected a spawn in the first job only", text)
check("released idle worker 2" in text, "the idle spawned worker was not released", text)
check(tasks(text, 1, 1)[1] > tasks(text, 0, 1)[1], "rank 1 did not run the second job", text)
bad = same_outputs(os.path.join(d, "local"), os.path.join(out, "0"))
check(not bad, "job 0: outputs differ: %s" % bad, text)
got = sorted(os.listdir(os.path.join(out, "1")))
check(got == sorted(os.path.basename(p) for p in inputs[:2]), "job 1 wrote %s" % got, text)
for n in got:
    a = open(os.path.join(d, "local", n), "rb").read()
    check(a == open(os.path.join(out, "1", n), "rb").read(), "job 1: %s differs" % n, text)
print("ok")
