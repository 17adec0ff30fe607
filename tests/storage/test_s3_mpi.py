# SPDX-License-Identifier: MIT
# dip process under mpirun (3 ranks) with inputs and outputs in object storage (s3rver on
# loopback): the outputs are byte-identical to the local executor's on the same files. (By
# default the workers get and put the objects themselves; test_s3_mpi_workers.py checks who
# does what, a worker killed mid-put, and --no-worker-io.)
import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np

from diputil import mpi_sanitizer_env
from s3util import DIP, S3rver, check, dip, env

MPIEXEC = os.environ.get("MPIEXEC") or shutil.which("mpirun")


def main():
    if MPIEXEC is None:
        print("SKIP: no mpirun")
        raise SystemExit(77)
    srv = S3rver(["input", "out"])
    tmp = tempfile.mkdtemp(prefix="dip-s3-mpi-")
    try:
        e = env(srv.url)
        names = []
        for i in range(6):
            rng = np.random.RandomState(i)
            img = rng.randint(0, 256, size=(300 + 10 * i, 400, 3), dtype=np.uint8)
            path = os.path.join(tmp, "p%d.jpg" % i)
            cv2.imwrite(path, img)
            names.append(path)
            dip(["s3", "put", path, "s3://input/p/p%d.jpg" % i], e, check_rc=0)
        pipe = "gaussian(size=5) | invert"
        r = subprocess.run([DIP, "process", "--quiet", "-p", pipe, "-o", os.path.join(tmp, "loc") + "/"]
                           + names, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "local run: " + r.stderr)
        r = subprocess.run([MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
                            "--mca", "btl", "self,vader,tcp", "-np", "3", DIP, "process", "--quiet",
                            "-p", pipe, "-o", "s3://out/mpi/", "s3://input/p/*.jpg"],
                           capture_output=True, text=True, timeout=200,
                           env=mpi_sanitizer_env(dict(e)))
        check(r.returncode == 0, "mpirun: %d %s" % (r.returncode, r.stderr[-3000:]))
        check("6 done, 0 failed" in r.stderr, "summary: " + r.stderr[-2000:])
        for i in range(6):
            got = os.path.join(tmp, "got.jpg")
            dip(["s3", "get", "s3://out/mpi/p%d.jpg" % i, got], e, check_rc=0)
            check(open(got, "rb").read() == open(os.path.join(tmp, "loc", "p%d.jpg" % i), "rb").read(),
                  "p%d.jpg differs from the local executor" % i)
    finally:
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


main()
