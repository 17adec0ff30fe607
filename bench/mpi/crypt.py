#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What sealing cluster traffic costs (issue 17): the same np=3 jobs (two workers of one thread,
on this host's cores) with and without --cluster-key, a batch of 1080p JPEGs and one large image
split into tiles. Runs alternate (clear, key, clear, key, ...) so that a change in the machine's
load hits both alike; prints every run's wall time and CPU time (user + system of mpirun and all
ranks: what the work cost, less sensitive to other users of the machine than the wall time), the
median and minimum of each, the overheads, one core's seal/open speed (bench/mpi/seal-speed.c),
and the load average before and after.

    /usr/bin/python3 bench/mpi/crypt.py [--dip build/dip] [--batch 60] [--big-mp 48] [--repeat 5]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BATCH_PIPE, BIG_PIPE, make_jpeg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(cmd, env):
    """(wall seconds, CPU seconds of the command and every process it waited for)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.time() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0 or " 0 failed" not in err:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err[-3000:]))
    return dt, ru.ru_utime + ru.ru_stime


def seal_speed(d):
    """One core's seal and open speed in GB/s, or None without a C compiler."""
    exe = os.path.join(d, "seal-speed")
    srcs = ["bench/mpi/seal-speed.c", "src/exec/mpi/seal.c", "src/crypto/crypto.c",
            "src/core/error.c", "src/core/alloc.c"]
    r = subprocess.run(["cc", "-O2", "-Iinclude", "-Isrc", "-o", exe, *srcs, "-lnettle",
                        "-lgnutls"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return [line.split() for line in subprocess.run([exe], capture_output=True,
                                                    text=True).stdout.splitlines()]


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
        cpu = {False: [], True: []}
        for i in range(a.repeat):
            for sealed in ((False, True) if i % 2 == 0 else (True, False)):
                out = os.path.join(d, "out")
                shutil.rmtree(out, ignore_errors=True)
                t, c = timed(cmd(inputs, pipe, out, sealed), env)
                times[sealed].append(t)
                cpu[sealed].append(c)
        rows.append((name, times, cpu))
        for sealed in (False, True):
            print("%-6s %-5s wall s: %s   CPU s: %s" % (
                name, "key" if sealed else "clear", " ".join("%.2f" % t for t in times[sealed]),
                " ".join("%.2f" % t for t in cpu[sealed])))
    load1 = os.getloadavg()
    print("\n| work | wall median clear / key s | overhead | wall min clear / key s | overhead "
          "| CPU median clear / key s | overhead |")
    print("|---|---|---|---|---|---|---|")
    for name, times, cpu in rows:
        mc, mk = statistics.median(times[False]), statistics.median(times[True])
        nc, nk = min(times[False]), min(times[True])
        cc, ck = statistics.median(cpu[False]), statistics.median(cpu[True])
        print("| %s | %.2f / %.2f | %+.1f%% | %.2f / %.2f | %+.1f%% | %.2f / %.2f | %+.1f%% |"
              % (name, mc, mk, 100 * (mk / mc - 1), nc, nk, 100 * (nk / nc - 1), cc, ck,
                 100 * (ck / cc - 1)))
    speed = seal_speed(d)
    for size, s, o in speed or []:
        print("one core (CPU time): %s-byte messages sealed at %s GB/s, opened at %s GB/s"
              % (size, s, o))
    print("load average after: %.2f %.2f %.2f" % load1)
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
