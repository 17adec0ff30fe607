# SPDX-License-Identifier: MIT
"""Helpers for the conformance tests: locate the unpacked Debian packages in $DIP_TEST_CACHE
(tools/fetch-testdata.sh fills it), decode a file with dip through the dip-decode tool, load
independent references (Pillow's own PNG/GIF/BMP decoders, OpenCV's libjpeg-turbo/libwebp/libtiff
decodes), compare with stated tolerances and print a per-package summary."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

CACHE = os.environ.get("DIP_TEST_CACHE") or os.path.join(
    os.environ.get("DIP_SOURCE_DIR", "."), ".cache")
DIP_DECODE = os.environ.get("DIP_DECODE", "")


def skip(why):
    print("SKIPPED: " + why)
    sys.exit(77)


def package_dir(pkg, sub):
    """The folder `sub` (a glob under the unpacked package) or skip when the cache lacks it."""
    root = os.path.join(CACHE, "pkgs", pkg)
    if not os.path.exists(os.path.join(root, ".complete")):
        skip("%s is not in the test cache %s (run tools/fetch-testdata.sh)" % (pkg, CACHE))
    hits = sorted(glob.glob(os.path.join(root, sub)))
    if not hits:
        skip("%s: %s not found in the unpacked package" % (pkg, sub))
    return hits[0]


def decode(path, rotate=True):
    """Runs dip-decode on `path`: returns (result dict, uint8 array or None)."""
    if not DIP_DECODE:
        skip("DIP_DECODE (the dip-decode tool) is not set")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.npy")
        args = [DIP_DECODE] + ([] if rotate else ["--no-rotate"]) + [path, out]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not r.stdout.strip():
            res = {"rc": "CRASH", "msg": "exit %d: %s" % (r.returncode, r.stderr.strip()[-400:]),
                   "probe_rc": "CRASH"}
            return res, None
        res = json.loads(r.stdout)
        arr = np.load(out) if res["rc"] == "OK" else None
        if arr is not None and arr.ndim == 2:
            arr = arr[:, :, None]
        return res, arr


def to_rgba(a):
    """H x W x C (C = 1..4, as dip decodes) to H x W x 4 uint8."""
    h, w, c = a.shape
    out = np.empty((h, w, 4), np.uint8)
    if c in (1, 2):
        out[:, :, 0] = out[:, :, 1] = out[:, :, 2] = a[:, :, 0]
    else:
        out[:, :, :3] = a[:, :, :3]
    out[:, :, 3] = a[:, :, c - 1] if c in (2, 4) else 255
    return out


def pil_rgba(path, frame=0):
    """Pillow's decode (its own PNG, GIF and BMP decoders, independent of libpng and giflib) as
    H x W x 4 uint8. 16-bit samples are reduced to their high byte."""
    from PIL import Image
    im = Image.open(path)
    if frame:
        im.seek(frame)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        v = np.array(im).astype(np.uint32)
        g = (v >> 8).astype(np.uint8)
        alpha = np.full(g.shape, 255, np.uint8)
        t = im.info.get("transparency")
        if isinstance(t, int):
            alpha[v == t] = 0
        return np.dstack([g, g, g, alpha])
    t = im.info.get("transparency")
    if im.format == "PNG" and im.mode in ("L", "1") and isinstance(t, int):
        # Pillow compares a 1/2/4-bit tRNS gray value with samples already scaled to 8 bits,
        # so it misses it (ftbbn0g04.png); scale the key as the PNG spec does.
        with open(path, "rb") as f:
            depth = f.read(25)[24]
        g = np.array(im.convert("L"))
        key = t * 255 // ((1 << depth) - 1) if depth < 8 else t
        alpha = np.where(g == key, 0, 255).astype(np.uint8)
        return np.dstack([g, g, g, alpha])
    return np.array(im.convert("RGBA"))


def cv2_rgba(path, flags=None):
    """OpenCV's decode (libjpeg-turbo, libwebp, libtiff, libpng) as H x W x 4 uint8, with EXIF
    orientation applied unless flags say otherwise."""
    import cv2
    if flags is None:
        flags = cv2.IMREAD_UNCHANGED
    a = cv2.imread(path, flags)
    if a is None:
        return None
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    return to_rgba(np.ascontiguousarray(a))


def diff_stats(a, b):
    """(max abs difference, mean abs difference) of two equal-shape arrays."""
    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
    return (int(d.max()) if d.size else 0), (float(d.mean()) if d.size else 0.0)


class Suite:
    """Collects per-package counts and failures; finish() prints the summary and exits."""

    def __init__(self, name):
        self.name = name
        self.counts = {}
        self.files = {}
        self.failures = []

    def _count(self, pkg, kind, rel=None):
        if rel is not None:
            self.files.setdefault(pkg, set()).add(rel)
        c = self.counts.setdefault(pkg, {"compared": 0, "refused": 0, "survived": 0,
                                         "known_gap": 0, "not_built": 0})
        c[kind] += 1

    def fail(self, pkg, rel, why):
        self.failures.append("%s: %s: %s" % (pkg, rel, why))
        print("FAIL %s: %s" % (rel, why))

    def gap(self, pkg, rel, reason, detail):
        """A known, documented difference: reported in the summary, not failed."""
        self._count(pkg, "known_gap", rel)
        print("GAP  %-58s %s (known gap: %s)" % (rel, detail, reason))

    def compare(self, pkg, rel, path, ref, tol_max=0, tol_mean=None, rotate=True, label="ref",
                alpha_mask=False, known_gap=None):
        """Decodes `path` with dip and compares it with `ref` (H x W x 4). tol_max bounds the
        largest channel difference, tol_mean (when given) the mean one. alpha_mask: compare colour
        only where the reference is opaque (GIF frames over a transparent canvas)."""
        res, arr = decode(path, rotate)
        if arr is None and "support not built in" in res.get("msg", ""):
            self._count(pkg, "not_built", rel)
            print("SKIP %-58s %s" % (rel, res["msg"]))
            return None
        if arr is None and known_gap and res["rc"] not in ("CRASH", "OK") and res.get("msg"):
            self.gap(pkg, rel, known_gap, "refused: %s" % res["msg"][:80])
            return None
        if arr is None:
            self.fail(pkg, rel, "dip refused a valid file: %s %s" % (res["rc"], res["msg"]))
            return None
        got = to_rgba(arr)
        if got.shape != ref.shape:
            self.fail(pkg, rel, "size %s, %s has %s" % (got.shape, label, ref.shape))
            return None
        if alpha_mask:
            m = ref[:, :, 3] == 255
            mx, mean = diff_stats(got[m][:, :3], ref[m][:, :3])
            tm = ref[:, :, 3] == 0
            if arr.shape[2] in (2, 4) and tm.any():
                amx, _ = diff_stats(got[tm][:, 3], ref[tm][:, 3])
                mx = max(mx, amx)
        else:
            mx, mean = diff_stats(got, ref)
        ok = mx <= tol_max and (tol_mean is None or mean <= tol_mean)
        if not ok and known_gap:
            self.gap(pkg, rel, known_gap, "differs: max %d mean %.3f" % (mx, mean))
        elif not ok:
            self.fail(pkg, rel, "differs from %s: max %d (allowed %d), mean %.3f%s" % (
                label, mx, tol_max, mean, "" if tol_mean is None else " (allowed %.2f)" % tol_mean))
        else:
            self._count(pkg, "compared", rel)
            print("ok   %-58s vs %-10s max %3d mean %.3f" % (rel, label, mx, mean))
        return res

    def must_fail(self, pkg, rel, path, known_gap=None):
        """dip must refuse the file with an error code and a message, and must not crash.
        known_gap: why dip is known to accept it today; then acceptance is reported, not failed,
        and a refusal is reported as fixed."""
        res, arr = decode(path)
        if known_gap and res["rc"] == "OK":
            self._count(pkg, "known_gap", rel)
            print("GAP  %-58s accepted (known gap: %s)" % (rel, known_gap))
            return res
        if res["rc"] == "CRASH":
            self.fail(pkg, rel, "dip-decode crashed: %s" % res["msg"])
        elif res["rc"] == "OK":
            self.fail(pkg, rel, "dip accepted a file that must be refused")
        elif not res.get("msg"):
            self.fail(pkg, rel, "refused with %s but no message" % res["rc"])
        else:
            self._count(pkg, "refused", rel)
            print("ok   %-58s refused: %s %s" % (rel, res["rc"], res["msg"][:90]))
        return res

    def survive(self, pkg, rel, path):
        """Either result is fine; a crash or an error without a message is not."""
        res, _ = decode(path)
        if res["rc"] == "CRASH":
            self.fail(pkg, rel, "dip-decode crashed: %s" % res["msg"])
        elif res["rc"] != "OK" and not res.get("msg"):
            self.fail(pkg, rel, "refused with %s but no message" % res["rc"])
        else:
            self._count(pkg, "survived", rel)
            print("ok   %-58s %s %s" % (rel, res["rc"], res.get("msg", "")[:90]))
        return res

    def finish(self):
        print("\n---- %s summary ----" % self.name)
        for pkg, c in sorted(self.counts.items()):
            print("%-42s %3d files: %3d comparisons passed, %3d refused as required, "
                  "%3d survived, %d known gaps, %d skipped (format not built)" % (
                      pkg, len(self.files.get(pkg, ())), c["compared"], c["refused"],
                      c["survived"], c["known_gap"], c["not_built"]))
        if self.failures:
            print("%d FAILED:" % len(self.failures))
            for f in self.failures:
                print("  " + f)
            sys.exit(1)
        print("all passed")
        sys.exit(0)
