# SPDX-License-Identifier: MIT
"""Helpers for golden and property tests: run dip-raw on numpy arrays, make synthetic images,
fetch real photos (Debian's python3-skimage ships some), compare with tolerances; the sanitizer
settings of processes started under mpirun."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

DIP_RAW = os.environ.get("DIP_RAW", "")
# Set (to the sanitizers) by CTest in the ASan+UBSan build: tests then run the same code paths on
# a sample of their inputs, since the -Werror pass compares them all.
SANITIZED = os.environ.get("DIP_TEST_SANITIZED", "")
# Under sanitizers: one RGB photo, one gray one, and a JPEG of odd proportions.
SANITIZED_PHOTOS = ("astronaut.png", "camera.png", "rocket.jpg")


_server = None
_tmpdir = None
_san_logs = None


def _san_reports():
    found = sorted(os.listdir(_san_logs))
    for n in found:
        with open(os.path.join(_san_logs, n), errors="replace") as f:
            sys.stderr.write("== %s\n%s\n" % (n, f.read()[-6000:]))
    shutil.rmtree(_san_logs, True)
    if found:
        sys.stderr.write("FAIL: sanitizer reports from %d process(es) under mpirun: %s\n" %
                         (len(found), " ".join(found)))
        sys.stderr.flush()
        os._exit(1)


def mpi_sanitizer_env(e):
    """Under the sanitizers (make test's ASan pass), sets environment `e` (a dict, for mpirun) so
    that every rank writes its reports to a file of its own, and makes the test fail at its end if
    any rank wrote one. On stderr they were lost: a worker that aborts on an ASan error is just a
    lost worker whose task the cluster runs again, and the job passes (a heap overflow in every
    worker passed mpi/test_identical). Leak checking is off in the ranks: Open MPI's components
    leave allocations whose stacks LSan cannot name (frames in "<unknown module>", which
    tools/sanitizers/lsan.supp cannot match), so every rank printed a leak report that no test
    read, and building it re-read /proc/self/maps for each frame (about 0.4 CPU s a rank, a third
    of the mpi tests' ASan time). dip's own leaks are checked by the tests of the same code
    without mpirun. Returns e."""
    global _san_logs
    if not SANITIZED:
        return e
    if _san_logs is None:
        _san_logs = tempfile.mkdtemp(prefix="dip-mpi-san-")
        atexit.register(_san_reports)
    for var, name in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan")):
        opts = [o for o in e.get(var, "").split(":")
                if o and not o.startswith(("log_path=", "detect_leaks="))]
        if name == "asan":
            opts.append("detect_leaks=0")
        e[var] = ":".join(opts + ["log_path=" + os.path.join(_san_logs, name)])
    return e


def _serve():
    """The test's one dip-raw process (`dip-raw --serve`), started on first use and again after
    it died; every check of a test goes through it instead of starting a process per check."""
    global _server, _tmpdir
    if _server is not None and _server.poll() is None:
        return _server
    if _tmpdir is None:
        _tmpdir = tempfile.TemporaryDirectory()
    _server = subprocess.Popen([DIP_RAW, "--serve"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, bufsize=1)
    return _server


def run(pipeline, img, tile=0, threads=1):
    """Runs `pipeline` on uint8 array img (HxW or HxWxC) and returns the result array."""
    if "\t" in pipeline or "\n" in pipeline:
        return run_process(pipeline, img, tile, threads)
    srv = _serve()
    src, dst = os.path.join(_tmpdir.name, "in.npy"), os.path.join(_tmpdir.name, "out.npy")
    np.save(src, np.ascontiguousarray(img, dtype=np.uint8))
    try:
        srv.stdin.write("%s\t%s\t%s\t%d\t%d\n" % (pipeline, src, dst, tile, threads))
        srv.stdin.flush()
        answer = srv.stdout.readline()
    except BrokenPipeError:
        answer = ""
    if answer == "":
        code = srv.wait()
        raise RuntimeError("dip-raw %r failed: the process ended with status %d" % (pipeline, code))
    if answer != "ok\n":
        raise RuntimeError("dip-raw %r failed: %s" % (pipeline, answer[len("error: "):].strip()))
    return np.load(dst)


def close():
    """Ends the dip-raw process and returns its exit status (None when none ran): a leak or an
    error that the sanitizers report at exit shows here."""
    global _server
    if _server is None:
        return None
    _server.stdin.close()
    code = _server.wait()
    _server = None
    return code


def run_process(pipeline, img, tile=0, threads=1):
    """run() in a process of its own (the command line of dip-raw)."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(src, np.ascontiguousarray(img, dtype=np.uint8))
        r = subprocess.run([DIP_RAW, pipeline, src, dst, "--tile", str(tile),
                            "--threads", str(threads)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("dip-raw %r failed: %s" % (pipeline, r.stderr.strip()))
        return np.load(dst)


def synthetic(seed=1):
    """Edge-case images: 1x1, 1xN, Nx1, odd sizes, flat, noise, gradients; gray and colour."""
    rng = np.random.default_rng(seed)
    out = []
    for (h, w) in [(1, 1), (1, 17), (23, 1), (2, 2), (5, 7), (31, 47), (64, 64), (97, 131)]:
        out.append(("noise%dx%d" % (h, w), rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
        out.append(("gnoise%dx%d" % (h, w), rng.integers(0, 256, (h, w), dtype=np.uint8)))
    out.append(("flat", np.full((40, 50, 3), 77, np.uint8)))
    out.append(("gflat", np.full((40, 50), 200, np.uint8)))
    yy, xx = np.mgrid[0:120, 0:160]
    grad = ((xx * 255) // 159).astype(np.uint8)
    out.append(("ggrad", grad))
    out.append(("grad", np.dstack([grad, ((yy * 255) // 119).astype(np.uint8), 255 - grad])))
    return out


def photos():
    """Real photos from Debian's python3-skimage data folder, when installed (RGB and gray);
    under sanitizers only SANITIZED_PHOTOS."""
    res = []
    for d in ["/usr/lib/python3/dist-packages/skimage/data"]:
        if not os.path.isdir(d):
            continue
        import cv2
        for name in ["astronaut.png", "coffee.png", "chelsea.png", "camera.png", "coins.png",
                     "rocket.jpg", "motorcycle_left.png", "page.png", "moon.png"]:
            p = os.path.join(d, name)
            if os.path.exists(p):
                img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
                if img is None:
                    continue
                if img.ndim == 3 and img.shape[2] == 4:
                    img = img[:, :, :3]
                if img.ndim == 3:
                    img = img[:, :, ::-1].copy()  # dip works in RGB order
                res.append((name, img))
    if SANITIZED:
        res = [(n, i) for n, i in res if n in SANITIZED_PHOTOS]
        print("sanitized build (%s): photos sampled to %s" % (SANITIZED, [n for n, _ in res]))
    return res


def max_diff(a, b):
    if a.shape != b.shape:
        return 999
    return int(np.max(np.abs(a.astype(np.int32) - b.astype(np.int32)))) if a.size else 0


class Checker:
    """Collects failures and prints a summary line 'N passed, M failed'."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAIL:", what, flush=True)

    def done(self):
        code = close()
        if code is not None:
            self.check(code == 0, "dip-raw --serve ended with status %d" % code)
        print("%d passed, %d failed" % (self.passed, len(self.failed)))
        sys.exit(1 if self.failed else 0)
