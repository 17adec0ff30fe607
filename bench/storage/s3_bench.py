# SPDX-License-Identifier: MIT
# Object storage figures for docs/storage.md: a 50-image batch local -> local against s3 -> s3
# (a real s3rver on loopback, started here), and the peak memory (max RSS) of dip while it puts
# and gets a 200 MB object. Usage: /usr/bin/python3 bench/storage/s3_bench.py BUILD_DIR [RUNS]
import os
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


def photo(i, w=2048, h=1536):
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


def timed(cmd, e):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=e, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit("%s: %s" % (" ".join(cmd), p.stderr))
    return dt


def max_rss_kb(cmd, e):
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=e, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("%s: %s" % (" ".join(cmd), p.stderr))
    return int(p.stderr.strip().splitlines()[-1])


def main():
    tmp = tempfile.mkdtemp(prefix="dip-s3-bench-")
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
        loc, rem = [], []
        for r in range(runs):
            out = os.path.join(tmp, "out%d" % r)
            loc.append(timed([DIP, "process", "--quiet", "-p", PIPE, "-o", out + "/"] + files, e))
            rem.append(timed([DIP, "process", "--quiet", "-p", PIPE, "-o",
                              "s3://out/run%d/" % r, "s3://input/photos/*.jpg"], e))
        # Same bytes either way.
        got = os.path.join(tmp, "check.jpg")
        dip(["s3", "get", "s3://out/run0/p07.jpg", got], e, check_rc=0)
        same = open(got, "rb").read() == open(os.path.join(tmp, "out0", "p07.jpg"), "rb").read()
        nproc = os.cpu_count()
        print("## %d-image batch, %d x %d JPEG (%.1f MB in), pipeline '%s', %d runs, %d cores"
              % (N, 2048, 1536, total / 1e6, PIPE, runs, nproc))
        print()
        print("| path | median s | images/s | MB/s in |")
        print("|---|---|---|---|")
        for name, t in (("local -> local", loc), ("s3 -> s3 (s3rver, loopback)", rem)):
            m = statistics.median(t)
            print("| %s | %.2f | %.1f | %.1f |" % (name, m, N / m, total / 1e6 / m))
        print()
        print("s3 -> s3 / local -> local: %.2fx the time; outputs identical: %s"
              % (statistics.median(rem) / statistics.median(loc), same))
        print()

        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            for _ in range(200):
                f.write(os.urandom(1 << 20))
        put = max_rss_kb([DIP, "s3", "put", big, "s3://out/big.bin"], e)
        t_put = timed([DIP, "s3", "put", big, "s3://out/big2.bin"], e)
        back = os.path.join(tmp, "back.bin")
        get = max_rss_kb([DIP, "s3", "get", "s3://out/big.bin", back], e)
        t_get = timed([DIP, "s3", "get", "s3://out/big.bin", back], e)
        ok = subprocess.run(["cmp", big, back]).returncode == 0
        base = max_rss_kb([DIP, "version"], e)
        print("## 200 MiB object (%d parts of 8 MiB), max RSS of the dip process" % 25)
        print()
        print("| operation | max RSS MiB | seconds | MB/s |")
        print("|---|---|---|---|")
        print("| dip version (baseline) | %.1f | | |" % (base / 1024))
        print("| dip s3 put (multipart) | %.1f | %.2f | %.0f |" % (put / 1024, t_put, 209.7 / t_put))
        print("| dip s3 get | %.1f | %.2f | %.0f |" % (get / 1024, t_get, 209.7 / t_get))
        print()
        print("round trip identical: %s" % ok)
    finally:
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)


main()
