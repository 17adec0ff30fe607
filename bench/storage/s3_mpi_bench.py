# SPDX-License-Identifier: MIT
# Worker-side object I/O under mpirun (issue 12), for docs/storage.md: a 50-image batch
# s3 -> s3 (a real s3rver on loopback, started here) under `mpirun -np 3`, with the workers
# getting and putting the objects themselves (the default) and with --no-worker-io (rank 0 gets
# every input, ships its bytes, receives every output and puts it), runs alternated; plus
# local -> local under the same mpirun for reference. Prints the median wall time, images/s and
# the MPI bytes rank 0 sent and received (the summary's transport line), and checks that both
# ways give the same bytes. Usage: /usr/bin/python3 bench/storage/s3_mpi_bench.py BUILD_DIR [RUNS]
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "storage"))
build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
os.environ["DIP"] = os.path.join(build, "dip")
from s3util import DIP, S3rver, dip, env  # noqa: E402

PIPE = "resize(scale=0.5) | sharpen"
N = 50
MPIEXEC = shutil.which("mpirun") or "mpirun"
NP = 3


def photo(i, w=2048, h=1536):
    """The same synthetic photos as bench/storage/s3_bench.py."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([(x * 255 / w + 40 * np.sin(y / (30 + i))) % 256,
                    (y * 255 / h + 30 * np.cos(x / (45 + i))) % 256,
                    ((x + y) * 128 / (w + h) + i * 3) % 256], axis=2).astype(np.uint8)
    rng = np.random.RandomState(i)
    for _ in range(20):
        c = tuple(int(v) for v in rng.randint(0, 256, 3))
        cv2.circle(img, (int(rng.randint(0, w)), int(rng.randint(0, h))), int(rng.randint(20, 300)),
                   c, -1)
    return cv2.GaussianBlur(img, (3, 3), 0)


def mpirun(args, e):
    cmd = [MPIEXEC, "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp",
           "-np", str(NP), DIP, "process", "--quiet", "-p", PIPE] + args
    t = time.perf_counter()
    p = subprocess.run(cmd, env=e, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0 or "%d done, 0 failed" % N not in p.stderr:
        sys.exit("%s: exit %d\n%s" % (" ".join(cmd), p.returncode, p.stderr[-3000:]))
    m = re.search(r"transport: rank 0 sent (\d+) bytes to the workers, received (\d+)", p.stderr)
    return dt, (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def main():
    tmp = tempfile.mkdtemp(prefix="dip-s3-mpi-bench-")
    srv = S3rver(["input", "out"])
    try:
        e = env(srv.url)
        src = os.path.join(tmp, "photos")
        os.makedirs(src)
        total = 0
        for i in range(N):
            path = os.path.join(src, "p%02d.jpg" % i)
            cv2.imwrite(path, photo(i), [cv2.IMWRITE_JPEG_QUALITY, 90])
            total += os.path.getsize(path)
            dip(["s3", "put", path, "s3://input/photos/p%02d.jpg" % i], e, check_rc=0)
        files = sorted(os.path.join(src, f) for f in os.listdir(src))
        res = {"local": [], "worker": [], "ship": []}
        traffic = {}
        for r in range(runs):
            dt, traffic["local"] = mpirun(["-o", os.path.join(tmp, "loc%d" % r) + "/"] + files, e)
            res["local"].append(dt)
            dt, traffic["worker"] = mpirun(["-o", "s3://out/w%d/" % r,
                                            "s3://input/photos/*.jpg"], e)
            res["worker"].append(dt)
            dt, traffic["ship"] = mpirun(["--no-worker-io", "-o", "s3://out/s%d/" % r,
                                          "s3://input/photos/*.jpg"], e)
            res["ship"].append(dt)
        same = True
        for i in (0, 7, 49):
            a, b = os.path.join(tmp, "a.jpg"), os.path.join(tmp, "b.jpg")
            dip(["s3", "get", "s3://out/w0/p%02d.jpg" % i, a], e, check_rc=0)
            dip(["s3", "get", "s3://out/s0/p%02d.jpg" % i, b], e, check_rc=0)
            loc = open(os.path.join(tmp, "loc0", "p%02d.jpg" % i), "rb").read()
            same = same and open(a, "rb").read() == open(b, "rb").read() == loc
        print("%d images, %.1f MB of JPEG in, pipeline '%s', mpirun -np %d, %d runs, %d cores"
              % (N, total / 1e6, PIPE, NP, runs, os.cpu_count()))
        print("| 50-image batch under mpirun -np 3 | median s | images/s | rank 0 sent MB | "
              "rank 0 received MB |")
        print("|---|---|---|---|---|")
        rows = (("local -> local", "local"),
                ("s3 -> s3, rank 0 ships bytes (`--no-worker-io`)", "ship"),
                ("s3 -> s3, workers get and put (default)", "worker"))
        for label, k in rows:
            med = statistics.median(res[k])
            sent, recv = traffic.get(k, (None, None))
            print("| %s | %.2f | %.1f | %s | %s |" % (
                label, med, N / med, "%.3f" % (sent / 1e6) if sent is not None else "",
                "%.3f" % (recv / 1e6) if recv is not None else ""))
        print("all runs: %s" % {k: ["%.2f" % v for v in vs] for k, vs in res.items()})
        print("outputs identical (workers vs rank 0 vs local files): %s" % same)
    finally:
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


main()
