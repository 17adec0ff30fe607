#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What sealing cluster traffic costs (issue 17): the same np=3 jobs (two workers of one thread,
on this host's cores) with and without --cluster-key, a batch of 1080p JPEGs and one large image
split into tiles. Runs alternate (clear, key, clear, key, ...) so that a change in the machine's
load hits both alike; prints every run, the median and the minimum of each, the overhead of the
medians, and the load average before and after.

    /usr/bin/python3 bench/mpi/crypt.py [--dip build/dip] [--batch 60] [--big-mp 48] [--repeat 5]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BATCH_PIPE, BIG_PIPE, make_jpeg, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dip", default=os.path.join(os.path.dirname(__file__), "../../build/dip"))
    ap.add_argument("--mpiexec", default=shutil.which("mpiexec") or "mpiexec")
    ap.add_argument("--batch", type=int, default=60)
    ap.add_argument("--big-mp", type=float, default=48)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    dip = os.path.realpath(a.dip)
    d = tempfile.mkdtemp(prefix="dip-bench-crypt-")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("DIP_CLUSTER_KEY", None)
    key = os.path.join(d, "cluster.key")
    subprocess.run([dip, "key", "create", key], check=True, capture_output=True)
    batch = []
    for i in range(a.batch):
        p = os.path.join(d, "hd%03d.jpg" % i)
        make_jpeg(p, 1920, 1080, i)
        batch.append(p)
    side = int((a.big_mp * 1e6) ** 0.5)
    big = os.path.join(d, "big.jpg")
    make_jpeg(big, side, side, 99)

    def cmd(inputs, pipe, out, sealed):
        return [a.mpiexec, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
                "--mca", "btl", "self,vader,tcp", "-np", "3", dip, "process", "--quiet", "-t", "1",
                "-p", pipe, "-o", out + "/", *(["--cluster-key", key] if sealed else []), *inputs]

    load0 = os.getloadavg()
    print("host: %d cores; np=3 (2 workers x 1 thread); batch: %d x 1080p JPEG; large: %dx%d "
          "JPEG (%.0f MP, tiled)" % (os.cpu_count(), a.batch, side, side, side * side / 1e6))
    print("%d runs of each, alternating clear/key; load average before: %.2f %.2f %.2f"
          % (a.repeat, *load0))
    rows = []
    for name, inputs, pipe in (("batch", batch, BATCH_PIPE), ("large", [big], BIG_PIPE)):
        times = {False: [], True: []}
        for _ in range(a.repeat):
            for sealed in (False, True):
                out = os.path.join(d, "out")
                shutil.rmtree(out, ignore_errors=True)
                t, _ = timed(cmd(inputs, pipe, out, sealed), env)
                times[sealed].append(t)
        rows.append((name, times))
        for sealed in (False, True):
            print("%-6s %-5s runs: %s" % (name, "key" if sealed else "clear",
                                          " ".join("%.2f" % t for t in times[sealed])))
    load1 = os.getloadavg()
    print("\n| work | clear median s | key median s | overhead (medians) | clear min s | key min s "
          "| overhead (minima) |")
    print("|---|---|---|---|---|---|---|")
    for name, times in rows:
        mc, mk = statistics.median(times[False]), statistics.median(times[True])
        nc, nk = min(times[False]), min(times[True])
        print("| %s | %.2f | %.2f | %+.1f%% | %.2f | %.2f | %+.1f%% |"
              % (name, mc, mk, 100 * (mk / mc - 1), nc, nk, 100 * (nk / nc - 1)))
    print("load average after: %.2f %.2f %.2f" % load1)
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
