# SPDX-License-Identifier: MIT
"""A sealed cluster (--cluster-key) meets an altered and a replayed message mid-job: rank 2's first
result has one bit of its ciphertext flipped (DIP_TEST_TAMPER=flip), or is sent twice
(DIP_TEST_TAMPER=replay), as someone on the network would do (test-only hook, built with
DIP_TEST_HOOKS). Each time the coordinator rejects the message, names rank 2 in the log as
failing authentication, treats it as lost (its tasks go back to the queue), never crashes or
blocks, and the job ends with every output byte-identical to the local executor's."""
import os
import re
import subprocess

from mpiutil import (DIP, MPIEXEC, check, env, make_images, need_hooks, run_local, same_outputs,
                     tmpdir, worker_table)

need_hooks()
d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 12, 480, 360, seed=23)
pipe = "median(size=5) | gaussian(size=5) | equalize"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
key = os.path.join(d, "cluster.key")
check(subprocess.run([DIP, "key", "create", key], capture_output=True).returncode == 0,
      "dip key create failed")

expect = {"flip": r"message \d+ does not authenticate: altered on the way, or sealed with another "
                  r"key",
          "replay": r"replayed message: sequence \d+ was already received"}
for mode, why in expect.items():
    out = os.path.join(d, mode)
    args = ["process", "-p", pipe, "-o", out + "/", "--log-level", "1", "--cluster-key", key,
            *inputs]
    # MPMD: ranks 0 and 1 as usual, rank 2 with the hook in its environment.
    cmd = [MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe", "--mca", "btl",
           "self,vader,tcp", "-np", "2", DIP, *args, ":", "-np", "1", "env",
           "DIP_TEST_TAMPER=" + mode, DIP, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=200, errors="replace",
                       env=env(DIP_MPI_LOST_S=3))
    text = r.stderr + r.stdout
    print(text[-2000:])
    check(r.returncode == 0, "%s: mpirun exited %d" % (mode, r.returncode), text)
    m = re.search(r"rank 2 \([^)]*\) lost: failed authentication: " + why, text)
    check(m is not None, "%s: the log does not name rank 2 as failing authentication" % mode,
          text)
    check(not re.search(r"rank 1 \([^)]*\) lost", text), "%s: rank 1 was lost" % mode, text)
    bad = same_outputs(os.path.join(d, "local"), out)
    check(not bad, "%s: outputs differ or are missing: %s" % (mode, bad), text)
    table = worker_table(text)
    check(table.get(2, ("?",))[0] == "LOST", "%s: rank 2 not listed as lost: %s" % (mode, table),
          text)
    check(table.get(1, ("?",))[0] == "alive", "%s: rank 1 should be alive: %s" % (mode, table),
          text)
    print("%s: %s" % (mode, m.group(0)))
print("ok")
