# SPDX-License-Identifier: MIT
"""Helpers for the cluster executor's tests: test images (cv2), local and mpirun runs of
`dip process`, the pids of the ranks, and output comparison."""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

import cv2
import numpy as np
from diputil import SANITIZED, mpi_sanitizer_env
from priority import raise_priority

raise_priority()

DIP = os.environ.get("DIP") or os.path.join(os.environ.get("DIP_BINARY_DIR", "build"), "dip")
MPIEXEC = os.environ.get("MPIEXEC") or shutil.which("mpiexec") or "mpiexec"
# Every op kind: stencil, statistic, global (canny hysteresis), geometric.
PIPELINE = "gaussian(size=5) | equalize | canny | resize(scale=0.5)"
PIPELINE2 = "median(size=3) | stretch | sharpen | rotate(angle=90) | otsu"


def env(**extra):
    e = dict(os.environ)
    e.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
             OMPI_MCA_btl_vader_single_copy_mechanism="none",
             OMPI_MCA_mca_base_component_disable_dlclose="1")
    mpi_sanitizer_env(e)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def tmpdir():
    """A scratch folder removed at exit (kept when DIP_KEEP_TMP is set, for debugging)."""
    d = tempfile.mkdtemp(prefix="dip-mpi-")
    if not os.environ.get("DIP_KEEP_TMP"):
        atexit.register(shutil.rmtree, d, True)
    return d


def make_images(folder, n, w, h, seed=1, prefix="img", ext="png"):
    """Smooth random colour images (so JPEG/PNG sizes are realistic), n of them."""
    rng = np.random.default_rng(seed)
    paths = []
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        small = (rng.random((max(2, h // 16), max(2, w // 16), 3)) * 255).astype(np.uint8)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        noise = rng.integers(0, 24, size=img.shape, dtype=np.uint8)
        img = cv2.add(img, noise)
        p = os.path.join(folder, "%s%03d.%s" % (prefix, i, ext))
        cv2.imwrite(p, img)
        paths.append(p)
    return paths


def png_with_text(path, text):
    """Inserts a tEXt chunk carrying `text` after the IHDR of the PNG at `path`."""
    data = open(path, "rb").read()
    body = b"Comment\0" + text.encode()
    chunk = (len(body).to_bytes(4, "big") + b"tEXt" + body +
             zlib.crc32(b"tEXt" + body).to_bytes(4, "big"))
    at = 8 + 8 + 13 + 4
    open(path, "wb").write(data[:at] + chunk + data[at:])


def run_local(pipeline, inputs, out, extra=()):
    r = subprocess.run([DIP, "process", "-p", pipeline, "-o", out, "--quiet", *extra, *inputs],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit("local run failed (%d): %s" % (r.returncode, r.stderr))
    return r


def fault_job(d, seed):
    """(inputs, pipeline, environment) of a job that outlasts a fault injected after its second
    output, at any machine speed. With the test hooks every image takes 150 ms more on the workers
    (DIP_TEST_ITEM_SLEEP_MS): 64 small images last 2.4 s and more on four worker threads for
    almost no CPU (96 images through median 9 took 7.8 CPU seconds a test, computed twice: by the
    workers and by the local run the outputs are compared with). Without the hooks, that heavier
    job: 96 images (48 under ASan), ~3 s here; 24 once ended, 0.19 s after the start of a
    fresh-clone make test, before the kill landed."""
    if os.environ.get("DIP_TEST_HOOKS"):
        return (make_images(os.path.join(d, "in"), 64, 320, 240, seed=seed),
                "median(size=5) | " + PIPELINE, {"DIP_TEST_ITEM_SLEEP_MS": "150"})
    return (make_images(os.path.join(d, "in"), 48 if SANITIZED else 96, 640, 480, seed=seed),
            "median(size=9) | " + PIPELINE, {})


def mpi_cmd(np_, pipeline, inputs, out, extra=(), mpi_extra=()):
    btl = [] if "btl" in mpi_extra else ["--mca", "btl", "self,vader,tcp"]
    return [MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
            *btl, *mpi_extra, "-np", str(np_), DIP, "process",
            "-p", pipeline, "-o", out, "--log-level", "2", *extra, *inputs]


def run_mpi(np_, pipeline, inputs, out, extra=(), mpi_extra=(), timeout=200, **envx):
    t0 = time.time()
    r = subprocess.run(mpi_cmd(np_, pipeline, inputs, out, extra, mpi_extra),
                       capture_output=True, text=True, errors="backslashreplace", timeout=timeout,
                       env=env(**envx))
    r.seconds = time.time() - t0
    return r


def start_mpi(np_, pipeline, inputs, out, log, extra=(), mpi_extra=(), **envx):
    f = open(log, "w")
    p = subprocess.Popen(mpi_cmd(np_, pipeline, inputs, out, extra, mpi_extra), stdout=f,
                         stderr=subprocess.STDOUT, env=env(**envx), start_new_session=True)
    p.logfile = f
    p.t0 = time.time()
    return p


def rank_pids(launcher_pid, want=1, timeout=30):
    """{world rank: pid} of the dip processes started under the launcher."""
    deadline = time.time() + timeout
    ranks = {}
    while time.time() < deadline:
        ranks = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/exe" % pid) != os.path.realpath(DIP):
                    continue
                envs = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
            except OSError:
                continue
            d = dict(x.split(b"=", 1) for x in envs if b"=" in x)
            if b"OMPI_COMM_WORLD_RANK" in d and _descends(int(pid), launcher_pid):
                ranks.setdefault(int(d[b"OMPI_COMM_WORLD_RANK"]), int(pid))
        if len(ranks) >= want:
            return ranks
        time.sleep(0.1)
    return ranks


def _descends(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = open("/proc/%d/stat" % pid).read()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def wait_for(path_or_fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path_or_fn():
            return True
        time.sleep(0.05)
    return False


def same_outputs(a, b):
    """Names of files that differ or are missing between folders a and b."""
    bad = []
    for name in sorted(set(os.listdir(a)) | set(os.listdir(b))):
        pa, pb = os.path.join(a, name), os.path.join(b, name)
        if not (os.path.exists(pa) and os.path.exists(pb)) or \
                open(pa, "rb").read() != open(pb, "rb").read():
            bad.append(name)
    return bad


def worker_table(text):
    """{worker id: (state, tasks)} from the summary table `dip process` prints."""
    rows = {}
    for m in re.finditer(r"^(\d+)\s+\S+\s+(alive|LOST)\s+(\d+)\s", text, re.M):
        rows[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return rows


def check(cond, msg, log=None):
    if not cond:
        if log:
            sys.stderr.write(log[-6000:] + "\n")
        sys.exit("FAIL: " + msg)


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def last_output_age(folder, t_end):
    """Seconds between the newest file written in `folder` and t_end."""
    newest = max(os.path.getmtime(os.path.join(folder, n)) for n in os.listdir(folder))
    return t_end - newest


def need_hooks():
    """Skips (77) unless dip was built with the test-only fault hooks (DIP_TEST_HOOKS=ON, as the
    ci, asan and tsan presets do)."""
    if not os.environ.get("DIP_TEST_HOOKS"):
        print("skip: dip was built without the test-only fault hooks (DIP_TEST_HOOKS=OFF)")
        sys.exit(77)
