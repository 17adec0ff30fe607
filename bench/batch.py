# SPDX-License-Identifier: MIT
"""The batch benchmark of issue 13: 50 1080p JPEGs (q90 crops of the bench's three 12 MP images)
-> gaussian(size=5) -> JPEG q90, `dip process --threads 2`, beside OpenCV doing the same in a
Python loop (one process, cv2's own threads) and in two worker processes (one image each at a
time, like dip's two threads). Rounds are interleaved (every program once per round), so a load
change on a shared machine hits them alike. For each program: wall seconds and CPU seconds
(user + sys of the child processes, steadier than wall on a loaded machine), min and median of
the rounds, and images/s from the min wall.

Usage: /usr/bin/python3 bench/batch.py DIP [DIP_B ...] [--rounds N] [--threads T] [--no-opencv]
                                      [--device D]
       (several dip binaries: an A/B run of builds, interleaved in each round)
The images are made once under WORK/batch (--work, default build/bench) from WORK/synthetic.png
and bench/fetch-photos.sh's photos (bench/run.sh makes both; `make bench` runs this last)."""
import argparse
import glob
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cv2

N = 50
PIPE = "gaussian(size=5)"


def make_images(d, sources):
    if len(glob.glob(os.path.join(d, "*.jpg"))) == N:
        return sorted(glob.glob(os.path.join(d, "*.jpg")))
    os.makedirs(d, exist_ok=True)
    imgs = [cv2.imread(s, cv2.IMREAD_COLOR) for s in sources]
    for i in range(N):
        im = imgs[i % len(imgs)]
        h, w = im.shape[:2]
        k = i // len(imgs)
        x = (k * 397) % (w - 1920)
        y = (k * 211) % (h - 1080)
        cv2.imwrite(os.path.join(d, "img%02d.jpg" % i), im[y:y + 1080, x:x + 1920],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    return sorted(glob.glob(os.path.join(d, "*.jpg")))


def timed(argv):
    """Wall and CPU (user + sys) seconds of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if status != 0:
        sys.exit("batch.py: %s failed: %s" % (argv[0], err[-2000:]))
    return wall, ru.ru_utime + ru.ru_stime


def cv_one(args):
    src, dst = args
    im = cv2.imread(src, cv2.IMREAD_COLOR)
    out = cv2.GaussianBlur(im, (5, 5), 0)
    cv2.imwrite(dst, out, [cv2.IMWRITE_JPEG_QUALITY, 90])


def cv_main(mode, out, files):
    """Runs as a child process (so its CPU time is measured like dip's)."""
    jobs = [(f, os.path.join(out, os.path.basename(f))) for f in files]
    if mode == "loop":
        for j in jobs:
            cv_one(j)
    else:
        cv2.setNumThreads(1)
        with multiprocessing.Pool(2) as pool:
            pool.map(cv_one, jobs, chunksize=1)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--cv-child":
        cv_main(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("dip", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-opencv", action="store_true")
    ap.add_argument("--work", default=None, help="folder of synthetic.png and batch/")
    ap.add_argument("--device", default=None, help="dip's --device (default: dip's own default)")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = a.work or os.path.join(root, "build", "bench")
    bdir = os.path.join(work, "batch")
    photos = subprocess.run([os.path.join(root, "bench", "fetch-photos.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()
    srcs = [os.path.join(work, "synthetic.png"),
            os.path.join(photos, "kleiber.png"), os.path.join(photos, "dune.png")]
    srcs = [s for s in srcs if os.path.exists(s)]
    if not srcs:
        sys.exit("batch.py: no source images (run bench/run.sh once, or bench/fetch-photos.sh)")
    files = make_images(bdir, srcs)
    progs = []
    for i, d in enumerate(a.dip):
        name = "dip" if len(a.dip) == 1 else "dip[%d] %s" % (i, d)
        dev = ["--device", a.device] if a.device else []
        progs.append((name, lambda out, d=d, dev=dev: [d, "process", "--quiet", "--threads",
                                                       str(a.threads)] + dev +
                      ["-p", PIPE, "-q", "90", "-o", out] + files))
    if not a.no_opencv:
        me = os.path.abspath(__file__)
        progs.append(("opencv loop", lambda out: [sys.executable, me, "--cv-child", "loop", out]
                      + files))
        progs.append(("opencv 2 procs", lambda out: [sys.executable, me, "--cv-child", "pool",
                                                     out] + files))
    res = {name: [] for name, _ in progs}
    tmp = tempfile.mkdtemp(prefix="dip-batch-")
    try:
        for _ in range(a.rounds):
            for name, argv in progs:
                out = os.path.join(tmp, "out")
                shutil.rmtree(out, ignore_errors=True)
                os.makedirs(out)
                res[name].append(timed(argv(out)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("## Batch: %d 1080p JPEGs -> %s -> JPEG q90, %d threads, %d rounds, %d cores" %
          (N, PIPE, a.threads, a.rounds, os.cpu_count()))
    print("| program | wall min s | wall median s | images/s (min wall) | CPU min s | "
          "CPU median s | CPU ms/image (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in progs:
        w = [r[0] for r in res[name]]
        c = [r[1] for r in res[name]]
        print("| %s | %.3f | %.3f | %.0f | %.3f | %.3f | %.1f |" %
              (name, min(w), statistics.median(w), N / min(w), min(c), statistics.median(c),
               1000 * statistics.median(c) / N))
    print("load average at the end: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
