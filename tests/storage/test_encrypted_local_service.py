# SPDX-License-Identifier: MIT
# The job service with an encrypted local blob folder (`dip serve --encrypt-key K`, no --blobs):
# the blob files are sealed, yet results and the zip download as the plaintext that dip serve
# gives without a key, decrypted in chunks (memory does not grow with a 48 MB result); a flipped
# byte in a stored result is an EINTEGRITY error naming the blob, never other bytes; DELETE
# removes the sealed files.
import http.client
import io
import os
import subprocess
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
from srvutil import DIP, Server, check, encode, image  # noqa: E402

PIPE = "invert | gaussian(size=3)"
files = [("a.png", encode(image(200, 150, seed=3), ".png")),
         ("b.png", encode(image(160, 120, seed=4), ".png"))]


def blob_files(data):
    root = os.path.join(data, "blobs")
    return {os.path.join(root, d, f) for d in os.listdir(root)
            for f in os.listdir(os.path.join(root, d))}


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


ref = svc = None
try:
    tmp = tempfile.mkdtemp(prefix="dip-enc-local-")
    key = os.path.join(tmp, "blob.key")
    p = subprocess.run([DIP, "key", "create", key], capture_output=True)
    check(p.returncode == 0, "dip key create: %s" % p.stderr.decode())
    ref = Server("--threads", "2", "--quiet")
    j = ref.wait(ref.submit(files, pipeline=PIPE).json()["id"], timeout=240)
    want = [ref.get(it["result_url"]).body for it in j["items"]]
    ref.close()
    ref = None

    svc = Server("--threads", "2", "--quiet", "--encrypt-key", key)
    j = svc.wait(svc.submit(files, pipeline=PIPE).json()["id"], timeout=240)
    check(j["state"] == "done", "job done: %r" % j)
    stored = blob_files(svc.data)
    check(len(stored) == 4, "2 inputs and 2 results: %r" % stored)
    for path in stored:
        check(open(path, "rb").read(8) == b"DIPSEAL1", "a blob file is not sealed: " + path)
    for i, it in enumerate(j["items"]):
        check(svc.get(it["result_url"]).body == want[i], "item %d is the plaintext" % i)
        check(svc.get(it["result_url"] + "?redirect=1").body == want[i],
              "?redirect=1 on a local folder is the body")
    z = zipfile.ZipFile(io.BytesIO(svc.get("/api/v1/jobs/%s/archive.zip" % j["id"]).body))
    check(z.testzip() is None and sorted(z.read(n) for n in z.namelist()) == sorted(want), "zip")

    # A flipped byte in every stored blob: refused, naming the blob.
    for path in stored:
        with open(path, "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 1]))
    r = svc.get(j["items"][0]["result_url"])
    check(r.status == 500 and b"EINTEGRITY" in r.body and b"authentication failed" in r.body
          and b"blob " in r.body, "tampered: %d %r" % (r.status, r.body[:300]))
    # The zip streams (its 200 is sent before the first entry is opened): a tampered entry cuts
    # the transfer short, so the client sees an incomplete download, never a whole zip.
    try:
        r = svc.get("/api/v1/jobs/%s/archive.zip" % j["id"])
        check(not (r.status == 200 and zipfile.is_zipfile(io.BytesIO(r.body))),
              "a zip of tampered blobs came out whole")
    except http.client.IncompleteRead:
        pass
    check(svc.healthy(), "healthy after refusals")

    r = svc.request("DELETE", "/api/v1/jobs/" + j["id"])
    check(r.status == 200 and r.json()["deleted"], "DELETE: %r" % r.body[:200])
    check(blob_files(svc.data) == set(), "sealed files left: %r" % blob_files(svc.data))

    # A large sealed result downloads with flat memory.
    big = svc.wait(svc.submit([("big.png", encode(image(300, 250, 5), ".png"))],
                              pipeline="resize(width=4000,height=4000)", fmt="bmp")
                   .json()["id"], timeout=300)
    check(big["state"] == "done", "big job: %r" % big["items"][0]["error"])
    size = big["items"][0]["bytes_out"]
    time.sleep(1.0)
    base = peak = rss_mb(svc.proc.pid)
    c = svc.conn(timeout=120)
    c.request("GET", big["items"][0]["result_url"], headers={"Host": "127.0.0.1"})
    resp = c.getresponse()
    n = 0
    while True:
        chunk = resp.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
        peak = max(peak, rss_mb(svc.proc.pid))
    c.close()
    print("sealed local download of %.0f MB: RSS %.0f -> %.0f MiB" % (size / 1e6, base, peak))
    check(n == size, "complete: %d of %d" % (n, size))
    check(peak - base < size / 1e6 / 3, "RSS grew by %.0f MiB" % (peak - base))
    print("ok")
finally:
    for s in (ref, svc):
        if s:
            s.close()
