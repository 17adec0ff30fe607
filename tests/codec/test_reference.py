# SPDX-License-Identifier: MIT
"""dip's PNG, JPEG and GIF decoders on files written by other encoders (OpenCV, Pillow), compared
with other decoders: PNG and GIF exactly; JPEG exactly against Pillow (the same libjpeg-turbo, same
settings); 16-bit PNG against the rounding rule computed here; CMYK JPEG against Pillow's CMYK
values run through the documented conversion; EXIF orientation against Pillow's exif_transpose.
Each file goes through `dip process -o out.png` (a lossless re-encode) and `dip info --json`."""
import io
import json
import os
import subprocess
import sys
import tempfile

try:
    import cv2
    import numpy as np
    from PIL import Image, ImageOps
except ImportError:
    print("needs python3-opencv, python3-numpy and python3-pil; skipped")
    sys.exit(77)

from diputil import Checker  # noqa: E402

DIP = os.environ["DIP"]
ck = Checker()


def dip(*args):
    return subprocess.run([DIP] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120)


def decode(path, d, autorotate=True):
    """dip's decode of `path` as an RGB(A)/gray numpy array (via a lossless PNG)."""
    out = os.path.join(d, "dec-" + os.path.basename(path) + ".png")
    args = ["process", "--quiet", "-o", out]
    if not autorotate:
        args.append("--no-autorotate")
    r = dip(*(args + [path]))
    if r.returncode != 0:
        raise RuntimeError("dip process %s: %s" % (path, r.stderr.strip()))
    return np.array(Image.open(out))


def info(path):
    r = dip("info", "--json", path)
    return json.loads(r.stdout)[0]


def photo(h=90, w=120, seed=5):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([xx * 255 // (w - 1), yy * 255 // (h - 1), ((xx + 2 * yy) * 2) % 256])
    img = img + rng.integers(-12, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def same(a, b, what):
    ok = a.shape == b.shape and np.array_equal(a, b)
    if not ok and a.shape == b.shape:
        what += " (max diff %d)" % np.abs(a.astype(int) - b.astype(int)).max()
    elif not ok:
        what += " (shapes %s vs %s)" % (a.shape, b.shape)
    ck.check(ok, what)


with tempfile.TemporaryDirectory() as d:
    rgb = photo()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    alpha = ((np.arange(rgb.shape[1]) * 2) % 256).astype(np.uint8)[None, :].repeat(rgb.shape[0], 0)
    rgba = np.dstack([rgb, alpha])

    # PNG written by OpenCV: 8-bit gray, RGB, RGBA exact; 16-bit rounded to nearest.
    for name, arr in [("gray", gray), ("rgb", rgb), ("rgba", rgba)]:
        p = os.path.join(d, "cv-%s.png" % name)
        bgr = arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3
                                                    else cv2.COLOR_RGBA2BGRA)
        cv2.imwrite(p, bgr)
        same(decode(p, d), arr, "png %s from OpenCV" % name)
    rng = np.random.default_rng(7)
    for name, shape in [("gray16", (40, 50)), ("rgb16", (40, 50, 3))]:
        v16 = rng.integers(0, 65536, shape, dtype=np.uint16)
        v16.flat[:6] = [0, 128, 129, 32767, 32768, 65535]
        p = os.path.join(d, "cv-%s.png" % name)
        cv2.imwrite(p, v16 if v16.ndim == 2 else v16[:, :, ::-1])
        want = ((v16.astype(np.uint64) * 255 + 32767) // 65535).astype(np.uint8)
        same(decode(p, d), want, "png %s rounds to nearest" % name)
        ck.check(info(p)["bit_depth"] == 16, "png %s: info bit_depth 16" % name)

    # PNG written by Pillow: palette with transparency, 1-bit.
    pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=50)
    p = os.path.join(d, "pil-palette-trns.png")
    pal.save(p, transparency=bytes([0, 255, 128] + [255] * 47))
    same(decode(p, d), np.array(Image.open(p).convert("RGBA")), "png palette+tRNS from Pillow")
    i = info(p)
    ck.check(i["color"] == "palette" and i["channels"] == 4, "png palette+tRNS info: %s" % i)
    p = os.path.join(d, "pil-1bit.png")
    Image.fromarray(gray).convert("1").save(p)
    same(decode(p, d), np.array(Image.open(p).convert("L")), "png 1-bit from Pillow")

    # JPEG written by Pillow in several flavours; decoded by dip and by Pillow.
    for name, kw, mode in [("420", {"subsampling": 2}, "RGB"), ("422", {"subsampling": 1}, "RGB"),
                           ("444", {"subsampling": 0}, "RGB"),
                           ("progressive", {"progressive": True}, "RGB"), ("gray", {}, "L")]:
        p = os.path.join(d, "pil-%s.jpg" % name)
        Image.fromarray(rgb if mode == "RGB" else gray).save(p, quality=88, **kw)
        same(decode(p, d), np.array(Image.open(p).convert(mode)), "jpeg %s vs Pillow" % name)
        i = info(p)
        ck.check(i["progressive"] == (name == "progressive") and
                 i["color"] == ("gray" if mode == "L" else "ycbcr"), "jpeg %s info: %s" % (name, i))

    # CMYK JPEG from Pillow (Adobe marker, inverted data): Pillow's CMYK values through
    # R = (255 - C) * (255 - K) / 255, rounded. Tolerance 1 for the rounding of the two paths.
    cmyk = np.dstack([255 - rgb, np.full(rgb.shape[:2], 40, np.uint8)])
    p = os.path.join(d, "pil-cmyk.jpg")
    Image.fromarray(cmyk, "CMYK").save(p, quality=95)
    c = np.array(Image.open(p)).astype(int)
    want = ((255 - c[:, :, :3]) * (255 - c[:, :, 3:4]) + 127) // 255
    got = decode(p, d).astype(int)
    ck.check(got.shape == want.shape and np.abs(got - want).max() <= 1,
             "cmyk jpeg from Pillow matches the conversion of Pillow's CMYK values")
    ck.check(info(p)["color"] == "cmyk", "cmyk jpeg info")

    # EXIF orientation: dip's autorotation against Pillow's exif_transpose, all 8 values.
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        p = os.path.join(d, "pil-orient%d.jpg" % o)
        Image.fromarray(rgb[:40, :64]).save(p, quality=95, exif=ex.tobytes())
        ref = np.array(ImageOps.exif_transpose(Image.open(p)))
        same(decode(p, d), ref, "jpeg EXIF orientation %d vs Pillow exif_transpose" % o)
        same(decode(p, d, autorotate=False), np.array(Image.open(p)),
             "jpeg EXIF orientation %d, --no-autorotate keeps stored pixels" % o)
        ck.check(info(p)["orientation"] == o, "info orientation %d" % o)

    # GIF from Pillow: an animation with transparency; dip decodes the first frame.
    frames = [Image.fromarray(np.roll(rgb, 9 * k, axis=1)).convert(
        "P", palette=Image.ADAPTIVE, colors=64) for k in range(3)]
    p = os.path.join(d, "pil-anim.gif")
    frames[0].save(p, save_all=True, append_images=frames[1:], transparency=5, duration=40,
                   loop=0)
    ref = Image.open(p)
    ref.seek(0)
    ref = np.array(ref.convert("RGBA"))
    got = decode(p, d)
    ck.check(got.shape == ref.shape and np.array_equal(got[:, :, 3], ref[:, :, 3]),
             "gif first frame alpha vs Pillow")
    opaque = ref[:, :, 3] > 0
    ck.check(got.shape == ref.shape and np.array_equal(got[opaque][:, :3], ref[opaque][:, :3]),
             "gif first frame colours vs Pillow")
    i = info(p)
    ck.check(i["format"] == "gif" and i["frames"] == 3 and i["channels"] == 4,
             "gif info: %s" % i)
    p = os.path.join(d, "pil-still.gif")
    frames[1].save(p, interlace=True)
    same(decode(p, d), np.array(Image.open(p).convert("RGB")), "gif still (no transparency)")

ck.done()
