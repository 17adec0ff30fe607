# SPDX-License-Identifier: MIT
# Issue 10, bug 5: a phone photo stored 120 x 60 with EXIF Orientation 6 is processed turned
# (60 x 120, the codec applies the orientation), and the job's item gives its sides as processed
# and as a browser shows it, so the page's job table agrees with the file card and the result.
import struct

import cv2

from srvutil import Server, check, image

s = None
try:
    s = Server("--quiet", "--threads", "1")
    jpg = cv2.imencode(".jpg", image(120, 60, seed=3))[1].tobytes()
    app1 = b"Exif\0\0II*\0" + struct.pack("<IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0)
    turned = jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:]
    r = s.submit([("turned.jpg", turned), ("plain.jpg", jpg)], pipeline="invert", fmt="png")
    check(r.status == 201, "submit: %d %r" % (r.status, r.body[:200]))
    j = s.wait(r.json()["id"], timeout=120)
    check(j["state"] == "done", "job done: %s" % j["state"])
    sides = [(it["width"], it["height"], it["out_width"], it["out_height"]) for it in j["items"]]
    check(sides[0] == (60, 120, 60, 120), "turned photo: %r" % (sides[0],))
    check(sides[1] == (120, 60, 120, 60), "plain photo: %r" % (sides[1],))
    print("ok: the turned photo's item is 60 x 120 in and out")
finally:
    if s:
        s.close()
