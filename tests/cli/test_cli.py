# SPDX-License-Identifier: MIT
"""`dip` as a user runs it: one image and batches in every format, a bad input among good ones,
the summary and exit status, output naming and formats, no temporary files left behind, `dip info`
(text and JSON), `dip ops`, `--help` on every subcommand, tile/thread invariance from the CLI."""
import json
import os
import subprocess
import tempfile

import cv2
import numpy as np

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
ck = Checker()


def dip(*args, **kw):
    return subprocess.run([DIP] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120, **kw)


def photo(h=120, w=160, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)),
                     ((xx + yy) * 3) % 256]).astype(np.int32)
    img += rng.integers(-10, 10, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def ops():
    r = dip("ops", "--json")
    return {o["name"]: o for o in json.loads(r.stdout)["ops"]}


with tempfile.TemporaryDirectory() as d:
    img = photo()
    bgr = img[:, :, ::-1]
    src = {}
    for ext in ["png", "jpg", "bmp", "tif", "webp", "ppm"]:
        p = os.path.join(d, "in." + ext)
        cv2.imwrite(p, bgr)
        src[ext] = p
    gray = os.path.join(d, "gray.pgm")
    cv2.imwrite(gray, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))

    # --help on every subcommand, and the top-level usage.
    r = dip("--help")
    ck.check(r.returncode == 0 and "process" in r.stdout, "dip --help")
    lines = r.stdout.splitlines()
    start = lines.index("Commands:") + 1
    stop = lines.index("", start)
    for cmd in [line.split()[0] for line in lines[start:stop]]:
        h = dip(cmd, "--help")
        ck.check(h.returncode == 0 and "Usage" in h.stdout, "dip %s --help" % cmd)
    r = dip("version")
    for lib in ["dip ", "libpng", "libjpeg-turbo", "libwebp", "libtiff", "giflib", "SQLite",
                "libmicrohttpd", "Open MPI", "nettle", "libcurl"]:
        ck.check(r.returncode == 0 and lib in r.stdout, "dip version names %s" % lib)
    r = dip("nosuchcommand")
    ck.check(r.returncode != 0 and "unknown command" in r.stderr, "unknown command refused")

    # Format conversion of one image to every writable format; lossless ones keep the pixels.
    for ext in ["png", "bmp", "tif", "ppm"]:
        out = os.path.join(d, "conv." + ext)
        r = dip("process", "-o", out, src["png"])
        ck.check(r.returncode == 0 and os.path.exists(out), "convert png -> %s: %s" % (ext, r.stderr))
        back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
        ck.check(back is not None and np.array_equal(back, bgr), "lossless %s keeps pixels" % ext)
    # Lossy formats: as close to the source as OpenCV's own encoder at the same quality.
    for ext, flag in [("jpg", cv2.IMWRITE_JPEG_QUALITY), ("webp", cv2.IMWRITE_WEBP_QUALITY)]:
        out = os.path.join(d, "conv." + ext)
        r = dip("process", "-o", out, "-q", "95", src["png"])
        back = cv2.imread(out)
        ok, enc = cv2.imencode("." + ext, bgr, [flag, 95])
        theirs = cv2.imdecode(enc, cv2.IMREAD_COLOR)
        ours_err = np.abs(back.astype(int) - bgr.astype(int)).mean() if back is not None else 999
        cv_err = np.abs(theirs.astype(int) - bgr.astype(int)).mean()
        ck.check(r.returncode == 0 and ours_err <= cv_err * 1.25 + 0.5,
                 "lossy %s error %.2f vs OpenCV's %.2f" % (ext, ours_err, cv_err))
    # --format overrides the extension; the bytes are sniffed, never trusted from the name.
    out = os.path.join(d, "forced.png")
    r = dip("process", "-o", out, "--format", "bmp", src["png"])
    ck.check(r.returncode == 0 and open(out, "rb").read(2) == b"BM", "--format bmp wins")
    disguised = os.path.join(d, "really-a-png.jpg")
    with open(src["png"], "rb") as f, open(disguised, "wb") as g:
        g.write(f.read())
    r = dip("info", "--json", disguised)
    ck.check(r.returncode == 0 and json.loads(r.stdout)[0]["format"] == "png",
             "format sniffed from bytes, not the name")

    # dip info: text and JSON, from the header.
    r = dip("info", src["png"], gray)
    ck.check(r.returncode == 0 and "png 160x120, 3 channels" in r.stdout and
             "pnm 160x120, 1 channel" in r.stdout, "info text: " + r.stdout + r.stderr)
    r = dip("info", "--json", src["jpg"], src["webp"], src["tif"], src["bmp"])
    js = json.loads(r.stdout)
    ck.check([j["format"] for j in js] == ["jpeg", "webp", "tiff", "bmp"] and
             all(j["width"] == 160 and j["height"] == 120 for j in js), "info json")

    # A batch with one bad input among good ones: the others are written, the summary names the
    # failure and the reason, the exit status is non-zero, and no temporary file is left behind.
    bad = os.path.join(d, "broken.png")
    with open(src["png"], "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    empty = os.path.join(d, "empty.jpg")
    open(empty, "wb").close()
    outdir = os.path.join(d, "batch")
    inputs = [src["png"], bad, src["jpg"], empty, src["bmp"], os.path.join(d, "missing.png")]
    r = dip("process", "-p", "invert", "-o", outdir, *inputs)
    ck.check(r.returncode != 0, "batch with failures exits non-zero")
    ck.check("3 done, 3 failed" in r.stderr, "summary counts: " + r.stderr)
    ck.check("broken.png" in r.stderr and "empty.jpg" in r.stderr and "missing.png" in r.stderr,
             "summary names the failed files")
    ck.check("empty" in r.stderr.lower() or "0 bytes" in r.stderr, "reason for the empty file")
    names = sorted(os.listdir(outdir))
    ck.check(names == ["in.bmp", "in.jpg", "in.png"], "outputs keep base names: %s" % names)
    res = cv2.imread(os.path.join(outdir, "in.png"))
    ck.check(res is not None and np.array_equal(res, 255 - bgr), "invert result is right")

    # Plain per-image lines when stdout is not a terminal; --quiet silences them.
    r = dip("process", "-p", "invert", "-o", os.path.join(d, "q1"), src["png"], src["bmp"])
    ck.check(r.returncode == 0 and r.stdout.count("ok ") == 2, "plain progress lines")
    r = dip("process", "--quiet", "-p", "invert", "-o", os.path.join(d, "q2"), src["png"])
    ck.check(r.returncode == 0 and r.stdout == "", "--quiet prints no per-image lines")

    # Two inputs that would land on the same output name are refused before any work.
    r = dip("process", "-o", os.path.join(d, "dup"), src["png"], os.path.join(d, "in.png"))
    ck.check(r.returncode != 0 and "both be written" in r.stderr, "duplicate output names refused")

    # Pipeline errors name the problem.
    r = dip("process", "-p", "invrt", "-o", os.path.join(d, "x.png"), src["png"])
    ck.check(r.returncode != 0 and "did you mean invert" in r.stderr, "unknown op suggestion")

    # Limits from flags, checked from the header, naming the limit.
    r = dip("process", "--max-width", "100", "-o", os.path.join(d, "lim.png"), src["png"])
    ck.check(r.returncode != 0 and "max_width=100" in r.stderr, "limit flag: " + r.stderr)
    r = dip("info", "--max-pixels", "1000", src["jpg"])
    ck.check(r.returncode != 0 and "max_pixels=1000" in r.stderr, "info applies limits")

    # Tile size and thread count never change the bytes, from the command line.
    avail = ops()
    pipe = " | ".join(n for n in ["gaussian", "equalize", "canny", "resize(scale=0.5)", "invert"]
                      if n.split("(")[0] in avail)
    ref = None
    for tile, threads in [(0, 1), (1, 2), (7, 2), (64, 1), (257, 2)]:
        out = os.path.join(d, "t%d_%d.png" % (tile, threads))
        args = ["process", "-p", pipe, "-o", out, "--threads", threads, src["png"]]
        if tile:
            args += ["--tile", tile]
        r = dip(*args)
        ck.check(r.returncode == 0, "tiled run %s: %s" % (args, r.stderr))
        px = cv2.imread(out, cv2.IMREAD_UNCHANGED)
        if ref is None:
            ref = px
        else:
            ck.check(px is not None and np.array_equal(px, ref),
                     "'%s' tile %d threads %d identical" % (pipe, tile, threads))

    # Every operation, with its defaults, through `dip process -p` on every input format; the
    # output decodes (OpenCV) with the size the operation implies.
    gif = os.path.join(d, "in.gif")
    small = photo(48, 64, seed=9)
    ins = {}
    for ext in ["png", "jpg", "webp", "tif", "bmp", "ppm"]:
        p = os.path.join(d, "small-%s.%s" % (ext, ext))
        cv2.imwrite(p, small[:, :, ::-1])
        ins[ext] = p
    # GIF: OpenCV cannot write it; Pillow (Debian's python3-pil) can.
    from PIL import Image
    Image.fromarray(small).save(gif)
    ins["gif"] = gif
    # One batch per operation (every format in one process: under ASan a process start costs
    # more than the work), each output checked on its own.
    for name, op in sorted(avail.items()):
        outdir = os.path.join(d, "sweep-" + name)
        r = dip("process", "-p", name, "--format", "png", "-o", outdir,
                *[path for _, path in sorted(ins.items())])
        for ext, path in sorted(ins.items()):
            base = os.path.splitext(os.path.basename(path))[0]
            out = os.path.join(outdir, base + ".png")
            px = cv2.imread(out, cv2.IMREAD_UNCHANGED) if os.path.exists(out) else None
            ck.check(px is not None and px.size > 0,
                     "dip process -p %s on %s: %s" % (name, ext, r.stderr.strip()))

    # No temporary files anywhere we wrote.
    leftovers = [f for _, _, fs in os.walk(d) for f in fs if ".tmp." in f]
    ck.check(leftovers == [], "no temporary files left: %s" % leftovers)

ck.done()
