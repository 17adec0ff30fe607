# SPDX-License-Identifier: MIT
"""`--device` as a user meets it: `dip version` names the OpenCL devices; `dip process --device
opencl` writes the same files as `--device cpu` on gray, gray+alpha, RGB and RGBA images; a device
failure (forced by a hook of test builds) runs that image on the CPU with one warning, never a
failed item;
`auto` on a machine without a GPU, or without any OpenCL platform, is the CPU, silently; a bad
value is refused by name."""
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
ck = Checker()


def dip(*args):
    return subprocess.run([DIP] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=600)


def read(path):
    with open(path, "rb") as f:
        return f.read()


r = dip("version")
ck.check(r.returncode == 0 and "opencl: " in r.stdout, "dip version names devices: %r" % r.stdout)
gpu = "(gpu" in r.stdout

with tempfile.TemporaryDirectory() as d:
    rng = np.random.default_rng(5)
    inputs = []
    for ch in (1, 3, 4):
        img = rng.integers(0, 256, (37, 53, ch), dtype=np.uint8)
        img[:, :26] //= 3  # an edge, so that sobel and canny find something
        p = os.path.join(d, "in%d.png" % ch)
        cv2.imwrite(p, img if ch != 1 else img[:, :, 0])
        inputs.append(p)
    # gray+alpha (OpenCV cannot write it): dip's gray of the RGBA image.
    r = dip("process", "--device", "cpu", "-p", "gray", "-o", os.path.join(d, "in2.png"),
            inputs[2])
    ck.check(r.returncode == 0, "gray+alpha input: %r" % r.stderr)
    inputs.append(os.path.join(d, "in2.png"))
    first = None
    for pipe in ("gaussian(size=5) | sobel | threshold(t=40)",
                 "hsv(h=20) | median(size=3) | equalize | rotate(angle=90)",
                 "gaussian | canny(low=30, high=90)",
                 "invert | resize(scale=0.5, filter=area)"):
        outs = {}
        for dev in ("cpu", "opencl"):
            o = os.path.join(d, dev)
            r = dip("process", "--device", dev, "--quiet", "-p", pipe, "-o", o, *inputs)
            ck.check(r.returncode == 0 and "warning" not in r.stderr,
                     "%s on %s: %s" % (pipe, dev, r.stderr))
            outs[dev] = [read(os.path.join(o, os.path.basename(p))) for p in inputs]
        first = first or outs["cpu"]
        for i, p in enumerate(inputs):
            ck.check(outs["cpu"][i] == outs["opencl"][i],
                     "%s on %s: opencl file differs from cpu" % (pipe, os.path.basename(p)))
    # A device failure (forced: the first 2 kernel launches fail, a hook of test builds) runs
    # those images on the CPU with one warning each; no item fails and the files are the same.
    o = os.path.join(d, "faulty")
    env = dict(os.environ, DIP_TEST_OPENCL_FAIL_LAUNCHES="2")
    r = subprocess.run([DIP, "process", "--device", "opencl", "--threads", "1", "-p",
                        "gaussian(size=5) | sobel | threshold(t=40)", "-o", o] + inputs,
                       capture_output=True, text=True, timeout=600, env=env)
    warns = [ln for ln in r.stderr.splitlines() if "warning: opencl" in ln]
    ck.check(r.returncode == 0 and "4 done, 0 failed" in r.stdout + r.stderr,
             "forced failures: %r %r" % (r.stdout, r.stderr))
    ck.check(len(warns) == 2 and all("this image runs on the CPU" in w for w in warns),
             "one warning per failed image: %r" % r.stderr)
    faulty = [read(os.path.join(o, os.path.basename(p))) for p in inputs]
    ck.check(faulty == first, "files after forced failures differ from the CPU's")
    if not gpu:
        r = dip("process", "--device", "auto", "-p", "gaussian", "-o", os.path.join(d, "a.png"),
                inputs[1])
        ck.check(r.returncode == 0 and "warning" not in r.stderr, "auto without a GPU: %r" %
                 r.stderr)
        # auto (the default) never takes PoCL's CPU device: no device rows in the benchmark.
        r = dip("bench", "--width", "32", "--height", "16", "--runs", "1", "--ops", "invert")
        ck.check(r.returncode == 0 and ",invert,dip," in r.stdout and "dip-opencl" not in r.stdout,
                 "auto without a GPU benchmarks the CPU only: %r" % r.stdout)
    # auto on a machine without any GPU device node does not even load the OpenCL drivers
    # (PoCL loads LLVM: ~65 ms at every start); --device opencl does (LD_DEBUG=files lists
    # every library the dynamic loader opens, dlopen'ed ones included).
    nodes = ["/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/mali0", "/dev/dxg"]
    has_node = any(os.path.exists(n) for n in nodes) or any(
        os.path.isdir(x) and any(not e.startswith(".") for e in os.listdir(x))
        for x in ("/dev/dri", "/dev/accel"))
    vendors = "/etc/OpenCL/vendors"
    icds = [open(os.path.join(vendors, f)).read().strip() for f in
            (sorted(os.listdir(vendors)) if os.path.isdir(vendors) else []) if f.endswith(".icd")]
    if not has_node and icds and "OCL_ICD_VENDORS" not in os.environ:
        icdname = icds[0]  # as the ICD loader passes it to dlopen, as LD_DEBUG names it
        for dev, loaded in (("auto", False), ("opencl", True)):
            env = dict(os.environ, LD_DEBUG="files")
            r = subprocess.run([DIP, "process", "--device", dev, "-p", "gaussian", "-o",
                                os.path.join(d, "ld-%s.png" % dev), inputs[1]],
                               capture_output=True, text=True, timeout=600, env=env)
            ck.check(r.returncode == 0, "--device %s under LD_DEBUG: %r" % (dev, r.stderr[-500:]))
            ck.check((("file=" + icdname) in r.stderr) == loaded,
                     "--device %s without a GPU node: the ICD %s %s" %
                     (dev, icdname, "was not loaded" if loaded else "was loaded"))
    # No OpenCL platform at all (the ICD loader pointed at an empty folder): auto is the CPU,
    # silently; opencl says so once for the batch; every item is done, with the CPU's bytes.
    icd = os.path.join(d, "no-icd")
    os.mkdir(icd)
    env = dict(os.environ, OCL_ICD_VENDORS=icd)
    for dev, want in (("auto", 0), ("opencl", 1)):
        o = os.path.join(d, "noicd-" + dev)
        r = subprocess.run([DIP, "process", "--device", dev, "-p",
                            "gaussian(size=5) | sobel | threshold(t=40)", "-o", o] + inputs,
                           capture_output=True, text=True, timeout=600, env=env)
        warns = [ln for ln in r.stderr.splitlines() if "warning: opencl" in ln]
        ck.check(r.returncode == 0 and len(warns) == want and
                 (want == 0 or "no OpenCL platform" in warns[0]),
                 "no platform, --device %s: %r" % (dev, r.stderr))
        ck.check([read(os.path.join(o, os.path.basename(p))) for p in inputs] == first,
                 "no platform, --device %s: files differ from the CPU's" % dev)
    r = subprocess.run([DIP, "version"], capture_output=True, text=True, env=env)
    ck.check("opencl: no device" in r.stdout, "version without a platform: %r" % r.stdout)
    r = dip("process", "--device", "gpu", "-p", "invert", "-o", os.path.join(d, "b.png"),
            inputs[0])
    ck.check(r.returncode == 2 and "'gpu'" in r.stderr, "bad --device: %r" % r.stderr)
    r = dip("bench", "--device", "opencl", "--width", "64", "--height", "48", "--runs", "1",
            "--ops", "gaussian", "--threads", "1")
    rows = r.stdout.splitlines()
    ck.check(r.returncode == 0 and any(",gaussian,dip-opencl," in x for x in rows) and
             any(",gaussian,dip-opencl-kernels," in x for x in rows), "bench rows: %r" % rows)

sys.exit(ck.done())
