# SPDX-License-Identifier: MIT
# Downloads stream from the blob files (issue 9, finding 5): four slow clients downloading a
# 90 MB result, and then its zip, do not grow the server's memory by the result's size: each
# download holds a chunk, not the blob. The bytes are still right.
import hashlib
import socket
import threading
import time

from srvutil import Server, check, encode, image

s = None


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


try:
    s = Server("--quiet")
    j = s.submit([("big.png", encode(image(300, 250, 5), ".png"))],
                 pipeline="resize(width=6000,height=5000)", fmt="bmp").json()
    j = s.wait(j["id"], timeout=240)
    check(j["state"] == "done", "the big job: %r" % j["items"][0]["error"])
    size = j["items"][0]["bytes_out"]
    check(size > 80e6, "a large result: %d bytes" % size)
    full = s.get("/api/v1/jobs/%s/results/0" % j["id"], timeout=120).body
    check(len(full) == size, "one download is complete: %d of %d" % (len(full), size))
    digest = hashlib.sha256(full).hexdigest()
    del full
    time.sleep(0.5)
    for what, path in (("result", "/api/v1/jobs/%s/results/0" % j["id"]),
                       ("zip", "/api/v1/jobs/%s/archive.zip" % j["id"])):
        base = rss_mb(s.proc.pid)
        conns = []
        for _ in range(4):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
            c.recv(65536)
            conns.append(c)
        peak = base
        end = time.time() + 3
        while time.time() < end:
            peak = max(peak, rss_mb(s.proc.pid))
            time.sleep(0.05)
        for c in conns:
            c.close()
        print("4 slow %s downloads of %.0f MB: RSS %.0f -> %.0f MiB" % (what, size / 1e6, base,
                                                                          peak))
        check(peak - base < 40, "%s downloads grew RSS by %.0f MiB" % (what, peak - base))
        time.sleep(0.5)
    # A whole zip, read to the end, holds the same bytes.
    import io
    import zipfile
    z = zipfile.ZipFile(io.BytesIO(s.get("/api/v1/jobs/%s/archive.zip" % j["id"],
                                         timeout=120).body))
    data = z.read(z.namelist()[0])
    check(hashlib.sha256(data).hexdigest() == digest, "zip entry bytes")
    check(z.testzip() is None, "zip CRCs")
    check(s.healthy(), "healthy at the end")
    print("ok")
finally:
    if s:
        s.close()
