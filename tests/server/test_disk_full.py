# SPDX-License-Identifier: MIT
# A full disk (issue 9, finding 9): storing an upload or a result fails with 507 (ENOSPC) and a
# message that names no path of the server, in the answer and in the item's error; the log keeps
# the detail, and the server stays up. The disk is "full" through RLIMIT_FSIZE on the server
# process (writes past 4 MiB fail with EFBIG, SIGXFSZ ignored), which needs no root and no mount.
import resource
import signal
import subprocess

import srvutil
from srvutil import Server, check, encode, image

LIMIT = 4 << 20


def limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


popen = subprocess.Popen


def popen_limited(*a, **kw):
    kw["preexec_fn"] = limited
    return popen(*a, **kw)


s = None
try:
    srvutil.subprocess.Popen = popen_limited
    s = Server()
    srvutil.subprocess.Popen = popen
    noise = encode(image(1800, 1500, 9), ".png")
    check(len(noise) > LIMIT, "the upload is over the file size limit: %d" % len(noise))
    r = s.submit([("big.png", noise)])
    check(r.status == 507, "upload on a full disk: %d %r" % (r.status, r.body[:300]))
    e = r.json()["error"]
    check(e["code"] == "ENOSPC", "code %s" % e["code"])
    for needle in (s.data, s.tmp, "/blobs", ".tmp", "/"):
        check(needle not in e["message"], "message names a path (%r): %r" % (needle, e["message"]))
    check(r.header("Retry-After"), "507 with Retry-After")
    # A result too big to store fails its item, again without a path.
    small = encode(image(64, 48, 2), ".png")
    r = s.submit([("small.png", small)], pipeline="resize(width=1600,height=1200)", fmt="bmp")
    check(r.status == 201, "small upload: %d %r" % (r.status, r.body[:200]))
    j = s.wait(r.json()["id"])
    check(j["state"] == "failed", "job state %s" % j["state"])
    msg = j["items"][0]["error"]
    check("full" in msg and s.data not in msg and "/" not in msg,
          "item error names no path: %r" % msg)
    check(s.healthy(), "healthy after the failures")
    check(s.data in s.read_log(), "the log keeps the detail")
    print("ok")
finally:
    srvutil.subprocess.Popen = popen
    if s:
        s.close()
