#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Scaling benchmark of the cluster executor: a batch of 1080p JPEGs and one large image (100
megapixels by default), on two cores: the local executor with 1 and 2 threads, one worker of 2
threads (np=2), two workers of 1 thread (np=3) and three (np=4, oversubscribed), and for the large
image also np=3 with the coordinator's whole-image path (DIP_MPI_STREAM=0, as before strips).
Prints wall time, throughput, peak RSS (the process itself for local runs; under mpirun rank 0's
own figure from its log for the large image, else the largest process) and the parallel
efficiency against local 1-thread, and how far one worker is from the local executor on the
same threads. The load average is printed before and after: on a shared machine it says how much
the figures mean. Cluster runs start through `dip mpirun`, as users start them (it adds
--enable-recovery, --bind-to none and, on one machine, --mca pml ob1 --mca osc ^ucx). Each line
gives the minimum and median wall time and the median CPU time (user + system of every process
of the run: mpirun and all ranks), which is steadier than wall time on a loaded machine.

    /usr/bin/python3 bench/mpi/bench.py [--dip build/dip] [--batch 60] [--big-mp 100]
                                        [--repeat 2] [--only batch|large|large1] [--pairs N]

--pairs N: the batch only, local 2T then np=2, N times back to back, with each pair's gap and
their median (issue 14's one-worker figure: a single pair's noise is about +-2%).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

BATCH_PIPE = "gaussian(size=5) | equalize | sharpen | resize(scale=0.5)"
BIG_PIPE = "gaussian(size=5) | equalize | sharpen | resize(scale=0.5)"
# One tiled stage (no statistic): rank 0 streams both the input and the output, holding no
# intermediate image (equalize's histogram makes BIG_PIPE keep the image between its two steps).
BIG_PIPE1 = "gaussian(size=5) | sharpen | resize(scale=0.5)"


def make_jpeg(path, w, h, seed):
    rng = np.random.default_rng(seed)
    small = (rng.random((max(2, h // 32), max(2, w // 32), 3)) * 255).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = cv2.add(img, rng.integers(0, 16, size=img.shape, dtype=np.uint8))
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def timed(cmd, env):
    """(wall seconds, peak RSS in MiB of the largest process it started: rank 0 under mpirun,
    CPU seconds of every process it started)."""
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace")
    dt = time.time() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = ru.ru_maxrss / 1024.0
    cpu = ru.ru_utime + ru.ru_stime
    if r.returncode != 0 or " 0 failed" not in r.stderr:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-3000:]))
    for line in r.stderr.splitlines():
        if "rank 0 peak RSS" in line:  # --log-level 2: rank 0's own peak
            rss = float(line.rsplit("RSS", 1)[1].split()[0])
    return dt, rss, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dip", default=os.path.join(os.path.dirname(__file__), "../../build/dip"))
    ap.add_argument("--mpiexec", default=shutil.which("mpiexec") or "mpiexec")
    ap.add_argument("--batch", type=int, default=60)
    ap.add_argument("--big-mp", type=float, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", choices=("batch", "large", "large1"))
    ap.add_argument("--pairs", type=int, default=0)
    a = ap.parse_args()
    if a.pairs > 0:
        a.only, a.repeat = "batch", a.pairs
    dip = os.path.realpath(a.dip)
    d = tempfile.mkdtemp(prefix="dip-bench-mpi-")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    batch = []
    for i in range(a.batch):
        p = os.path.join(d, "hd%03d.jpg" % i)
        make_jpeg(p, 1920, 1080, i)
        batch.append(p)
    side = int((a.big_mp * 1e6) ** 0.5)
    big = os.path.join(d, "big.jpg")
    if a.only != "batch":
        make_jpeg(big, side, side, 99)
    mp_batch = a.batch * 1920 * 1080 / 1e6
    mp_big = side * side / 1e6

    # (label, cores used, command maker). RUSAGE_CHILDREN's peak RSS only grows, so each run is
    # measured in a fresh child python process.
    def local(threads):
        return lambda inputs, pipe, out: [dip, "process", "--quiet", "-t", str(threads), "-p",
                                          pipe, "-o", out + "/", *inputs]

    def mpi(np_, threads, stream=1):
        return lambda inputs, pipe, out: [
            "env", "DIP_MPI_STREAM=%d" % stream, "DIP_MPIRUN=" + a.mpiexec, dip, "mpirun",
            "--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp", "-np",
            str(np_), dip, "process", "--quiet", "--log-level", "2", "-t", str(threads), "-p",
            pipe, "-o", out + "/", *inputs]

    runs = [("local 1T", 1, local(1)), ("local 2T", 2, local(2)),
            ("np=2 (1 worker x 2T)", 2, mpi(2, 2)), ("np=3 (2 workers x 1T)", 2, mpi(3, 1)),
            ("np=4 (3 workers x 1T)", 2, mpi(4, 1)),
            ("np=3 whole-image path", 2, mpi(3, 1, 0))]
    one, loc = "np=2 (1 worker x 2T)", "local 2T"
    if a.pairs > 0:
        runs = [r for r in runs if r[0] in (loc, one)]
    print("host: %d cores; batch: %d x 1080p JPEG (%.0f MP); large: %dx%d JPEG (%.0f MP)" %
          (os.cpu_count(), a.batch, mp_batch, side, side, mp_big))
    print("%d runs each, interleaved; seconds = minimum wall, median wall; CPU = median user + "
          "system of all processes; efficiency = local-1T time / (cores x time), on minima; "
          "load average before: %.2f %.2f %.2f" % ((a.repeat,) + os.getloadavg()))
    print("%-6s %-22s %8s %8s %8s %8s %10s %10s" % ("work", "run", "min s", "median s", "CPU s",
                                                    "MP/s", "RSS MiB", "efficiency"))
    print("large: %s; large1: %s" % (BIG_PIPE, BIG_PIPE1))
    for name, inputs, pipe, mp in (("batch", batch, BATCH_PIPE, mp_batch),
                                   ("large", [big], BIG_PIPE, mp_big),
                                   ("large1", [big], BIG_PIPE1, mp_big)):
        if a.only and name != a.only:
            continue
        best, walls, cpus = {}, {}, {}
        todo = [r for r in runs if name != "batch" or "whole" not in r[0]]
        for k in range(a.repeat):
            for label, cores, mk in todo:
                out = os.path.join(d, "out")
                shutil.rmtree(out, ignore_errors=True)
                r = subprocess.run([sys.executable, __file__, "--one", repr(mk(inputs, pipe, out))],
                                   env=env, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(r.stderr + r.stdout)
                t, rss, cpu = (float(x) for x in r.stdout.split())
                walls.setdefault(label, []).append(t)
                cpus.setdefault(label, []).append(cpu)
                if label not in best or t < best[label][0]:
                    best[label] = (t, rss)
            if a.pairs > 0:
                print("pair %d: local 2T %.2f s, np=2 %.2f s: %+.1f%%" % (
                    k + 1, walls[loc][-1], walls[one][-1], 100.0 * (walls[one][-1] /
                                                                    walls[loc][-1] - 1.0)))
        t1 = best["local 1T"][0] if "local 1T" in best else None
        for label, cores, mk in todo:
            t, rss = best[label]
            print("%-6s %-22s %8.2f %8.2f %8.2f %8.1f %10.0f %10s" % (
                name, label, t, statistics.median(walls[label]), statistics.median(cpus[label]),
                mp / t, rss, "%.2f" % (t1 / (cores * t)) if t1 else "-"))
        if a.pairs > 0:
            gaps = [100.0 * (o / l - 1.0) for o, l in zip(walls[one], walls[loc])]
            print("%-6s one worker vs local, %d pairs: median %+.1f%%, from %+.1f%% to %+.1f%%" % (
                name, len(gaps), statistics.median(gaps), min(gaps), max(gaps)))
        print("%-6s one worker vs local, same 2 threads: %+.1f%% wall (min), %+.1f%% wall "
              "(median), %+.1f%% CPU (median)" % (
                  name, 100.0 * (best[one][0] / best[loc][0] - 1.0),
                  100.0 * (statistics.median(walls[one]) / statistics.median(walls[loc]) - 1.0),
                  100.0 * (statistics.median(cpus[one]) / statistics.median(cpus[loc]) - 1.0)))
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        import ast
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        t, rss, cpu = timed(ast.literal_eval(sys.argv[2]), env)
        print(t, rss, cpu)
    else:
        main()
