# SPDX-License-Identifier: MIT
"""The codec side of `make bench` (issue 18): dip, OpenCV and libvips in the same run.

1. One 12-megapixel photo (4000x3000, four real photos from Debian's plasma-workspace-wallpapers
   at their own resolution; skimage's astronaut scaled up when that package cannot be fetched),
   read from PPM, inverted, written as PNG level 6 and 1, TIFF, WebP q90 and JPEG q90, with 1
   and 2 threads: seconds (median), MP/s and file size.
2. PNG decode of the level-6 file: dip against OpenCV (libpng) and libvips.
3. A 108-megapixel JPEG (12000x9000) to PNG, 2 threads.
4. Batches: 50 1080p PNGs -> gaussian -> PNG, WebP and TIFF, images/s.
dip runs as `dip process` (one process per job, as a user runs it), libvips as the `vips`
command (VIPS_CONCURRENCY threads), OpenCV in this Python process (cv2.setNumThreads; the batch
with a pool of worker processes, one image each at a time).
Usage: codecs.py DIP_BINARY OUT_DIR [RUNS]; PARTS=single,decode,big,batch (default: all) runs
only those parts. Each time is the median of RUNS with the fastest run beside it ("min")."""
import glob
import multiprocessing
import resource
import os
import shutil
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np

dip, out = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
os.makedirs(out, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))
cache = os.path.join(os.path.dirname(here), ".cache", "photos")
has_vips = shutil.which("vips") is not None


def photos():
    """Four real photos (2560x1600) from plasma-workspace-wallpapers, fetched into .cache/."""
    names = ["Path", "FallenLeaf", "ColorfulCups", "BytheWater"]
    pat = os.path.join(cache, "x/usr/share/wallpapers/%s/contents/images/2560x1600.jpg")
    if not all(os.path.exists(pat % n) for n in names):
        os.makedirs(cache, exist_ok=True)
        subprocess.run("cd %s && apt-get download plasma-workspace-wallpapers >/dev/null 2>&1 && "
                       "dpkg-deb -x plasma-workspace-wallpapers_*.deb x" % cache, shell=True)
    if all(os.path.exists(pat % n) for n in names):
        return [cv2.imread(pat % n) for n in names]
    a = cv2.imread("/usr/lib/python3/dist-packages/skimage/data/astronaut.png")
    return [cv2.resize(a, (2560, 1600), interpolation=cv2.INTER_CUBIC)] * 4


def prepare():
    p12 = os.path.join(out, "photo12.ppm")
    p108 = os.path.join(out, "photo108.jpg")
    batch = os.path.join(out, "batch")
    if os.path.exists(p12) and os.path.exists(p108) and len(glob.glob(batch + "/*.png")) == 50:
        return p12, p108, batch
    ph = photos()
    crops = [im[50:1550, 280:2280] for im in ph]
    m = np.vstack([np.hstack(crops[:2]), np.hstack(crops[2:])])
    cv2.imwrite(p12, m)
    cv2.imwrite(p108, np.tile(m, (3, 3, 1)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    os.makedirs(batch, exist_ok=True)
    for i in range(50):
        im = ph[i % 4]
        y, x = (i * 37) % 500, (i * 53) % 620
        cv2.imwrite(os.path.join(batch, "img%02d.png" % i), im[y:y + 1080, x:x + 1920])
    return p12, p108, batch


def cpu_now():
    """CPU seconds of this process and its finished children (user + system)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


last_cpu = [0.0]
last_min = [0.0]


def median_time(fn):
    """Median wall seconds of `runs` calls; last_cpu[0] gets the median CPU seconds (all
    threads), which a loaded machine inflates far less than wall time."""
    ts, cs = [], []
    for _ in range(runs):
        c = cpu_now()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(cpu_now() - c)
    last_cpu[0] = statistics.median(cs)
    last_min[0] = min(ts)
    return statistics.median(ts)


def cell(s, mp):
    return "%.2f s (%.1f) min %.2f cpu %.2f" % (s, mp / s, last_min[0], last_cpu[0])


def sh(cmd, env=None):
    """Runs cmd; its output is shown only when it fails (dip's summary line would clutter the
    tables)."""
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, shell=True, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise subprocess.CalledProcessError(r.returncode, cmd)


# (name, dip options, output extension, OpenCV params, vips save options)
FORMATS = [
    ("PNG level 6", "", "png", [cv2.IMWRITE_PNG_COMPRESSION, 6], "[compression=6]"),
    ("PNG level 1", "--png-level 1", "png", [cv2.IMWRITE_PNG_COMPRESSION, 1], "[compression=1]"),
    ("TIFF (deflate)", "", "tif", [cv2.IMWRITE_TIFF_COMPRESSION, 8], "[compression=deflate,predictor=horizontal]"),
    ("WebP q90", "", "webp", [cv2.IMWRITE_WEBP_QUALITY, 90], "[Q=90]"),
    ("JPEG q90", "", "jpg", [cv2.IMWRITE_JPEG_QUALITY, 90], "[Q=90]"),
]


def single(p12):
    mp = 12.0
    print("\n## 12 MP photo (4000x3000), PPM -> invert -> format; wall seconds (median of %d), "
          "MP/s, CPU seconds (all threads), size" % runs)
    print("| output | dip 1 thr | dip 2 thr | dip size | OpenCV 1 thr | OpenCV 2 thr | cv size "
          "| vips 1 thr | vips 2 thr | vips size |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    img = cv2.imread(p12)
    for name, dopt, ext, cvp, vopt in FORMATS:
        cells = []
        o = os.path.join(out, "single-dip." + ext)
        for t in (1, 2):
            s = median_time(lambda: sh("%s process --quiet -p invert %s --threads %d -o %s %s"
                                       % (dip, dopt, t, o, p12)))
            cells.append(cell(s, mp))
        cells.append("%.2f MB" % (os.path.getsize(o) / 1e6))
        oc = os.path.join(out, "single-cv." + ext)
        for t in (1, 2):
            cv2.setNumThreads(t)
            s = median_time(lambda: cv2.imwrite(oc, cv2.bitwise_not(cv2.imread(p12)), cvp))
            cells.append(cell(s, mp))
        cells.append("%.2f MB" % (os.path.getsize(oc) / 1e6))
        if has_vips:
            ov = os.path.join(out, "single-vips." + ext)
            for t in (1, 2):
                s = median_time(lambda: sh("vips invert %s '%s%s'" % (p12, ov, vopt),
                                           {"VIPS_CONCURRENCY": str(t)}))
                cells.append(cell(s, mp))
            cells.append("%.2f MB" % (os.path.getsize(ov) / 1e6))
        else:
            cells += ["-", "-", "-"]
        print("| %s | %s |" % (name, " | ".join(cells)))
        sys.stdout.flush()
    del img


def decode(p12):
    png = os.path.join(out, "decode.png")
    cv2.imwrite(png, cv2.imread(p12), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    print("\n## PNG decode of the 12 MP photo (libpng level 6 file), PNG -> PPM, seconds (MP/s)")
    print("| | 1 thread | 2 threads |")
    print("|---|---|---|")
    ppm = os.path.join(out, "decode-out.ppm")
    row = []
    for t in (1, 2):
        s = median_time(lambda: sh("%s process --quiet --threads %d -o %s %s" % (dip, t, ppm, png)))
        row.append(cell(s, 12))
    print("| dip (PNG->PPM, whole command) | %s |" % " | ".join(row))
    # In-process decode only, as OpenCV's imdecode below: dip bench times dip_codec_decode.
    row = []
    for t in (1, 2):
        r = subprocess.run([dip, "bench", "--suite", "codecs", "--ops", "input", "--input", png,
                            "--runs", str(max(runs, 3)), "--threads", str(t)],
                           capture_output=True, text=True, check=True).stdout.splitlines()
        f = [x for x in r if x.startswith("codecs,decode-input,dip,%d," % t)][0].split(",")
        row.append("%.3f s (%.1f)" % (float(f[6]), float(f[9])))
    print("| dip (decode in process) | %s |" % " | ".join(row[:2]))
    row = []
    data = np.frombuffer(open(png, "rb").read(), np.uint8)
    for t in (1, 2):
        cv2.setNumThreads(t)
        s = median_time(lambda: cv2.imdecode(data, cv2.IMREAD_UNCHANGED))
        row.append("%.3f s (%.1f)" % (s, 12 / s))
    print("| OpenCV (imdecode in process) | %s |" % " | ".join(row))
    row = []
    for t in (1, 2):
        cv2.setNumThreads(t)
        s = median_time(lambda: cv2.imwrite(ppm, cv2.imread(png)))
        row.append(cell(s, 12))
    print("| OpenCV (libpng) | %s |" % " | ".join(row))
    if has_vips:
        row = []
        for t in (1, 2):
            s = median_time(lambda: sh("vips copy %s %s" % (png, ppm), {"VIPS_CONCURRENCY": str(t)}))
            row.append(cell(s, 12))
        print("| libvips | %s |" % " | ".join(row))


def big(p108):
    print("\n## 108 MP JPEG (12000x9000) -> PNG level 6, 2 threads, seconds")
    o = os.path.join(out, "big.png")
    s = median_time(lambda: sh("%s process --quiet --threads 2 --max-pixels 200000000 -o %s %s"
                                   % (dip, o, p108)))
    line = "| dip | %.1f s (cpu %.1f) | %.1f MB |" % (s, last_cpu[0], os.path.getsize(o) / 1e6)
    print("| | time | size |\n|---|---|---|\n" + line)
    cv2.setNumThreads(2)
    s = time.perf_counter()
    cv2.imwrite(o, cv2.imread(p108), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    print("| OpenCV (one run) | %.1f s | %.1f MB |" % (time.perf_counter() - s,
                                                     os.path.getsize(o) / 1e6))
    if has_vips:
        s = time.perf_counter()
        sh("vips copy %s '%s[compression=6]'" % (p108, o), {"VIPS_CONCURRENCY": "2"})
        print("| libvips (one run) | %.1f s | %.1f MB |" % (time.perf_counter() - s,
                                                          os.path.getsize(o) / 1e6))


def cv_one(args):
    src, dst, params = args
    cv2.setNumThreads(1)
    cv2.imwrite(dst, cv2.GaussianBlur(cv2.imread(src), (0, 0), 2.0), params)


def batch(bdir):
    files = sorted(glob.glob(bdir + "/*.png"))
    n = len(files)
    print("\n## Batch: %d 1080p PNGs -> gaussian(sigma=2) -> format, 2 threads/processes; "
          "images/s (median of %d)" % (n, runs))
    print("| output | dip | OpenCV (2 processes) | libvips (2 at a time) |")
    print("|---|---|---|---|")
    for name, ext, cvp, vopt in [("PNG", "png", [cv2.IMWRITE_PNG_COMPRESSION, 6], "[compression=6]"),
                                 ("WebP q90", "webp", [cv2.IMWRITE_WEBP_QUALITY, 90], "[Q=90]"),
                                 ("TIFF", "tif", [cv2.IMWRITE_TIFF_COMPRESSION, 8],
                                  "[compression=deflate,predictor=horizontal]")]:
        od = os.path.join(out, "batch-out-" + ext)
        os.makedirs(od, exist_ok=True)
        s = median_time(lambda: sh("%s process --quiet -p 'gaussian(sigma=2)' --threads 2 --format %s "
                                   "-o %s %s" % (dip, ext, od, " ".join(files))))
        cells = ["%.1f" % (n / s)]
        jobs = [(f, os.path.join(od, "cv-" + os.path.basename(f)[:-3] + ext), cvp) for f in files]
        with multiprocessing.Pool(2) as pool:
            s = median_time(lambda: pool.map(cv_one, jobs, chunksize=1))
        cells.append("%.1f" % (n / s))
        if has_vips:
            cmd = ("printf '%%s\\n' %s | xargs -P 2 -I{} sh -c 'vips gaussblur {} "
                   "\"%s/vips-$(basename {} .png).%s%s\" 2'" % (" ".join(files), od, ext, vopt))
            s = median_time(lambda: sh(cmd, {"VIPS_CONCURRENCY": "1"}))
            cells.append("%.1f" % (n / s))
        else:
            cells.append("-")
        print("| %s | %s |" % (name, " | ".join(cells)))
        sys.stdout.flush()


if __name__ == "__main__":
    p12, p108, bdir = prepare()
    parts = os.environ.get("PARTS", "single,decode,big,batch").split(",")
    print("load average at start: %.1f %.1f %.1f" % os.getloadavg())
    if "single" in parts:
        single(p12)
    if "decode" in parts:
        decode(p12)
    if "big" in parts:
        big(p108)
    if "batch" in parts:
        batch(bdir)
    print("\nload average at end: %.1f %.1f %.1f" % os.getloadavg())
