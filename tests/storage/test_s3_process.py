# SPDX-License-Identifier: MIT
# dip process with inputs and outputs in object storage (a real s3rver on loopback): the issue's
# example (`-o s3://out/thumbs/ 's3://input/photos/*.jpg'`), a prefix as input, s3 -> local and
# local -> s3, each output byte-identical to the same command on local files; a glob's '*' does
# not cross '/' (as in a shell); a missing object fails its item with the URL named while the
# others finish; a glob that matches nothing and a missing output bucket are clear errors.
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

from s3util import DIP, S3rver, check, dip, env

PIPE = "resize(scale=0.5) | sharpen"


def make_images(folder, n, ext, seed0):
    os.makedirs(folder, exist_ok=True)
    names = []
    for i in range(n):
        rng = np.random.RandomState(seed0 + i)
        img = rng.randint(0, 256, size=(180 + 7 * i, 240 + 5 * i, 3), dtype=np.uint8)
        cv2.circle(img, (100, 90), 60, (255, 128, 0), -1)
        name = "img%02d%s" % (i, ext)
        cv2.imwrite(os.path.join(folder, name), img)
        names.append(name)
    return names


def local_run(args):
    p = subprocess.run([DIP, "process", "--quiet"] + args, capture_output=True, text=True,
                       timeout=300)
    check(p.returncode == 0, "local dip process %r: %s" % (args, p.stderr))


def s3_files(e, url, tmp):
    """{key: bytes} of every object under url."""
    p = dip(["s3", "ls", url], e, check_rc=0)
    out = {}
    bucket = url[5:].split("/", 1)[0]
    for line in p.stdout.splitlines():
        key = line.split(None, 1)[1]
        path = os.path.join(tmp, "obj")
        dip(["s3", "get", "s3://%s/%s" % (bucket, key), path], e, check_rc=0)
        out[key] = open(path, "rb").read()
    return out


def main():
    srv = S3rver(["input", "out"])
    tmp = tempfile.mkdtemp(prefix="dip-s3-process-")
    try:
        e = env(srv.url)
        photos = os.path.join(tmp, "photos")
        jpgs = make_images(photos, 6, ".jpg", 0)
        pngs = make_images(os.path.join(tmp, "pngs"), 3, ".png", 100)
        for n in jpgs:
            dip(["s3", "put", os.path.join(photos, n), "s3://input/photos/" + n], e, check_rc=0)
        for n in pngs:
            dip(["s3", "put", os.path.join(tmp, "pngs", n), "s3://input/pngs/" + n], e, check_rc=0)
        # Not matched by photos/*.jpg: another extension, and a deeper key.
        dip(["s3", "put", os.path.join(tmp, "pngs", pngs[0]), "s3://input/photos/notes.png"], e,
            check_rc=0)
        dip(["s3", "put", os.path.join(photos, jpgs[0]), "s3://input/photos/deeper/x.jpg"], e,
            check_rc=0)

        # The example, against the local run.
        local_run(["-p", PIPE, "-o", os.path.join(tmp, "thumbs") + "/"]
                  + [os.path.join(photos, n) for n in jpgs])
        p = dip(["process", "--quiet", "-p", PIPE, "-o", "s3://out/thumbs/", "s3://input/photos/*.jpg"],
                e, timeout=300)
        check(p.returncode == 0, "s3 -> s3: %s" % p.stderr)
        got = s3_files(e, "s3://out/thumbs/", tmp)
        want = {"thumbs/" + f: open(os.path.join(tmp, "thumbs", f), "rb").read()
                for f in os.listdir(os.path.join(tmp, "thumbs"))}
        check(sorted(got) == sorted(want), "thumbs: %r vs %r" % (sorted(got), sorted(want)))
        for k in want:
            check(got[k] == want[k], "%s differs from the local run" % k)

        # A prefix in, a local folder out; and a png format conversion.
        local_run(["-p", "invert", "-f", "webp", "--lossless", "-o",
                   os.path.join(tmp, "ref-pngs") + "/"] + [os.path.join(tmp, "pngs", n) for n in pngs])
        p = dip(["process", "--quiet", "-p", "invert", "-f", "webp", "--lossless", "-o",
                 os.path.join(tmp, "from-s3") + "/", "s3://input/pngs/"], e, timeout=300)
        check(p.returncode == 0, "s3 prefix -> local: %s" % p.stderr)
        ref = sorted(os.listdir(os.path.join(tmp, "ref-pngs")))
        check(sorted(os.listdir(os.path.join(tmp, "from-s3"))) == ref, "names from a prefix")
        for f in ref:
            check(open(os.path.join(tmp, "ref-pngs", f), "rb").read()
                  == open(os.path.join(tmp, "from-s3", f), "rb").read(), f + " differs")

        # One local file to one object.
        one = os.path.join(photos, jpgs[1])
        local_run(["-p", "gray", "-o", os.path.join(tmp, "one.png"), one])
        dip(["process", "--quiet", "-p", "gray", "-o", "s3://out/single/one.png", one], e,
            check_rc=0)
        got = s3_files(e, "s3://out/single/", tmp)
        check(got.get("single/one.png") == open(os.path.join(tmp, "one.png"), "rb").read(),
              "local -> s3 single object differs")

        # A missing object: its item fails with the URL named, the others are written.
        p = dip(["process", "--quiet", "-p", "invert", "-o", "s3://out/partial/",
                 "s3://input/photos/" + jpgs[2], "s3://input/photos/missing.jpg"], e, timeout=120)
        check(p.returncode != 0 and "s3://input/photos/missing.jpg" in p.stderr
              and "NoSuchKey" in p.stderr, "missing input: %d %s" % (p.returncode, p.stderr))
        got = s3_files(e, "s3://out/partial/", tmp)
        check(list(got) == ["partial/img02.jpg"], "the good item was written: %r" % list(got))

        # Nothing matches; a missing output bucket.
        p = dip(["process", "-p", "invert", "-o", "s3://out/x/", "s3://input/photos/*.tiff"], e)
        check(p.returncode == 2 and "no object matches" in p.stderr, "empty glob: " + p.stderr)
        p = dip(["process", "--quiet", "-p", "invert", "-o", "s3://nobucket/x.jpg", one], e)
        check(p.returncode != 0 and "bucket 'nobucket' does not exist" in p.stderr,
              "missing output bucket: " + p.stderr)
    finally:
        srv.close()
    print("ok")


main()
