#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Scaling benchmark of the cluster executor: a batch of 1080p JPEGs and one large image (100
megapixels by default), run by the local executor and under mpirun with 1, 2, ... workers of one
thread each, so k workers use k cores. Prints throughput (MP/s), parallel efficiency against one
worker, and the overhead of the MPI path against the local executor doing the same work on one
thread.

    /usr/bin/python3 bench/mpi/bench.py [--dip build/dip] [--batch 24] [--big-mp 100]
                                        [--workers 1,2] [--repeat 1]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

BATCH_PIPE = "gaussian(size=5) | equalize | sharpen | resize(scale=0.5)"
BIG_PIPE = "gaussian(size=5) | equalize | sharpen | resize(scale=0.5)"


def make_jpeg(path, w, h, seed):
    rng = np.random.default_rng(seed)
    small = (rng.random((max(2, h // 32), max(2, w // 32), 3)) * 255).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = cv2.add(img, rng.integers(0, 16, size=img.shape, dtype=np.uint8))
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def timed(cmd, env):
    """(wall seconds, CPU seconds of every process it started)."""
    u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.time() - t0
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0 or " 0 failed" not in r.stderr:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-3000:]))
    return dt, (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dip", default=os.path.join(os.path.dirname(__file__), "../../build/dip"))
    ap.add_argument("--mpiexec", default=shutil.which("mpiexec") or "mpiexec")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--big-mp", type=float, default=100)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    dip = os.path.realpath(a.dip)
    workers = [int(x) for x in a.workers.split(",")]
    d = tempfile.mkdtemp(prefix="dip-bench-mpi-")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    batch = []
    for i in range(a.batch):
        p = os.path.join(d, "hd%03d.jpg" % i)
        make_jpeg(p, 1920, 1080, i)
        batch.append(p)
    side = int((a.big_mp * 1e6) ** 0.5)
    big = os.path.join(d, "big.jpg")
    make_jpeg(big, side, side, 99)
    mp_batch = a.batch * 1920 * 1080 / 1e6
    mp_big = side * side / 1e6

    def local(inputs, pipe, threads):
        out = os.path.join(d, "out-local")
        shutil.rmtree(out, ignore_errors=True)
        return min(timed([dip, "process", "--quiet", "-t", str(threads), "-p", pipe, "-o",
                          out + "/", *inputs], env) for _ in range(a.repeat))

    def mpi(inputs, pipe, k):
        out = os.path.join(d, "out-mpi%d" % k)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [a.mpiexec, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
               "-np", str(k + 1), dip, "process", "--quiet", "-t", "1", "-p", pipe, "-o", out + "/",
               *inputs]
        return min(timed(cmd, env) for _ in range(a.repeat))

    print("host: %d cores; batch: %d x 1080p JPEG (%.0f MP); large: %dx%d JPEG (%.0f MP)" %
          (os.cpu_count(), a.batch, mp_batch, side, side, mp_big))
    print("%-8s %-18s %8s %8s %8s %10s" % ("work", "run", "seconds", "cpu s", "MP/s",
                                             "efficiency"))
    for name, inputs, pipe, mp in (("batch", batch, BATCH_PIPE, mp_batch),
                                   ("large", [big], BIG_PIPE, mp_big)):
        t_loc, c_loc = local(inputs, pipe, 1)
        print("%-8s %-18s %8.2f %8.2f %8.1f %10s" % (name, "local, 1 thread", t_loc, c_loc,
                                                     mp / t_loc, "-"))
        t1 = c1 = None
        for k in workers:
            t, cpu = mpi(inputs, pipe, k)
            if k == 1:
                t1, c1 = t, cpu
            eff = (t1 / (k * t)) if t1 else float("nan")
            print("%-8s %-18s %8.2f %8.2f %8.1f %10.2f" % (
                name, "mpi, %d worker%s" % (k, "s" if k > 1 else ""), t, cpu, mp / t, eff))
        if t1:
            print("%-8s MPI overhead vs local on one thread: %+.1f%% wall, %+.1f%% CPU" %
                  (name, 100.0 * (t1 / t_loc - 1.0), 100.0 * (c1 / c_loc - 1.0)))
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
