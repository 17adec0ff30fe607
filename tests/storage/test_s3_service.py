# SPDX-License-Identifier: MIT
# The job service's newer features with its blobs in object storage (issue 12 after the service
# layer of issue 9): against a real s3rver on loopback, `dip serve --blobs s3://... --encrypt-key
# K` serves results and the zip as plaintext byte-identical to `dip process` on the same inputs;
# ?redirect=1 falls back to the body when blobs are sealed (a presigned URL would hand out
# ciphertext) and, without a key, is a 302 to a presigned URL that s3rver answers with the result's
# bytes; DELETE of a job removes its objects from the bucket; an unreferenced object under the
# prefix is collected when the server starts; /metrics counts the bucket's bytes; and a large
# encrypted download does not grow the server's memory with the result's size.
import io
import os
import subprocess
import tempfile
import time
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
from srvutil import Server, encode, image  # noqa: E402
from s3util import DIP, S3rver, check, dip, env  # noqa: E402

PIPE = "invert | gaussian(size=3)"
files = [("a.png", encode(image(200, 150, seed=1), ".png")),
         ("b.png", encode(image(160, 120, seed=2), ".png"))]


def objects(e, url):
    p = dip(["s3", "ls", url], e, check_rc=0)
    return {line.split(None, 1)[1]: int(line.split(None, 1)[0])
            for line in p.stdout.splitlines() if line.strip()}


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    s3 = S3rver(["blobs"])
    svc = plain = None
    try:
        e = env(s3.url)
        tmp = tempfile.mkdtemp(prefix="dip-s3-service-", dir=s3.dir)
        key = os.path.join(tmp, "blob.key")
        dip(["key", "create", key], e, check_rc=0)

        # The reference: dip process on the same files, local to local.
        for name, data in files:
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        p = subprocess.run([DIP, "process", "--quiet", "-p", PIPE, "-o", out + "/"]
                           + [os.path.join(tmp, n) for n, _ in files], capture_output=True)
        check(p.returncode == 0, "dip process: %s" % p.stderr.decode())
        want = [open(os.path.join(out, n), "rb").read() for n, _ in files]

        # Encrypted blobs in the bucket: plaintext downloads, the zip, no redirect.
        svc = Server("--threads", "2", "--quiet", "--blobs", "s3://blobs/enc", "--encrypt-key",
                     key, env=e)
        j = svc.wait(svc.submit(files, pipeline=PIPE).json()["id"], timeout=240)
        check(j["state"] == "done", "encrypted job done: %r" % j)
        for i, it in enumerate(j["items"]):
            got = svc.get(it["result_url"]).body
            check(got == want[i], "item %d: %d bytes, the CLI wrote %d" % (i, len(got),
                                                                           len(want[i])))
            r = svc.get(it["result_url"] + "?redirect=1")
            check(r.status == 200 and r.body == want[i],
                  "?redirect=1 on sealed blobs streams the plaintext: %d" % r.status)
        z = zipfile.ZipFile(io.BytesIO(svc.get("/api/v1/jobs/%s/archive.zip" % j["id"]).body))
        check(z.testzip() is None, "zip CRCs")
        check(sorted(z.read(n) for n in z.namelist()) == sorted(want), "zip entries")
        stored = objects(e, "s3://blobs/enc/")
        check(len(stored) == 4, "2 inputs and 2 results in the bucket: %r" % stored)

        # DELETE removes the job's objects.
        r = svc.request("DELETE", "/api/v1/jobs/" + j["id"])
        check(r.status == 200 and r.json()["deleted"], "DELETE: %r" % r.body[:200])
        left = objects(e, "s3://blobs/enc/")
        check(left == {}, "objects left after DELETE: %r" % left)

        # An object no job refers to (an interrupted upload's) is collected at start.
        j2 = svc.wait(svc.submit(files[:1], pipeline=PIPE).json()["id"], timeout=240)
        svc.stop()
        orphan = "s3://blobs/enc/ab/" + "c" * 62
        junk = os.path.join(tmp, "junk")
        with open(junk, "wb") as f:
            f.write(b"half an upload")
        dip(["s3", "put", junk, orphan], e, check_rc=0)
        dip(["s3", "put", junk, "s3://blobs/enc/README"], e, check_rc=0)
        before = objects(e, "s3://blobs/enc/")
        check("enc/ab/" + "c" * 62 in before, "orphan uploaded: %r" % before)
        svc.start()
        after = objects(e, "s3://blobs/enc/")
        check("enc/ab/" + "c" * 62 not in after, "orphan object collected: %r" % after)
        check("enc/README" in after, "an object that is not a blob name stays")
        check(len(after) == 3, "the job's input and result stay: %r" % after)
        blob_bytes = sum(v for k, v in after.items() if k != "enc/README")
        m = svc.get("/metrics").body.decode()
        check("dip_blob_bytes %d\n" % blob_bytes in m and "dip_blob_files 2\n" in m,
              "disk use is the bucket's blob bytes (%d) after the start's pass: %s"
              % (blob_bytes, [x for x in m.splitlines() if x.startswith("dip_blob")]))
        r = svc.get(j2["items"][0]["result_url"])
        check(r.status == 200 and r.body == want[0], "job 2 still downloads")

        # A large encrypted result: RSS does not grow with its size while it downloads.
        big = svc.wait(svc.submit([("big.png", encode(image(300, 250, 5), ".png"))],
                                  pipeline="resize(width=4000,height=4000)", fmt="bmp")
                       .json()["id"], timeout=300)
        check(big["state"] == "done", "big job: %r" % big["items"][0]["error"])
        size = big["items"][0]["bytes_out"]
        time.sleep(1.0)
        base = peak = rss_mb(svc.proc.pid)
        c = svc.conn(timeout=120)
        t0 = time.time()
        c.request("GET", big["items"][0]["result_url"], headers={"Host": "127.0.0.1"})
        resp = c.getresponse()
        first = None
        n = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            if first is None:
                first = time.time() - t0
            n += len(chunk)
            peak = max(peak, rss_mb(svc.proc.pid))
        c.close()
        print("encrypted download of %.0f MB from s3: RSS %.0f -> %.0f MiB, first MiB after "
              "%.2f s, all after %.2f s" % (size / 1e6, base, peak, first or 0, time.time() - t0))
        check(n == size, "big download complete: %d of %d" % (n, size))
        check(peak - base < size / 1e6 / 3, "RSS grew by %.0f MiB for a %.0f MB result"
              % (peak - base, size / 1e6))
        svc.close()
        svc = None

        # Plain blobs in the bucket: ?redirect=1 is a 302 to a presigned URL that gives the bytes.
        plain = Server("--threads", "2", "--quiet", "--blobs", "s3://blobs/plain", env=e)
        j = plain.wait(plain.submit(files, pipeline=PIPE).json()["id"], timeout=240)
        check(j["state"] == "done", "plain job done")
        for i, it in enumerate(j["items"]):
            r = plain.get(it["result_url"] + "?redirect=1")
            loc = r.header("Location") or ""
            check(r.status == 302 and loc.startswith(s3.url + "/blobs/plain/"),
                  "302 to the object: %d %r" % (r.status, loc))
            check("X-Amz-Signature=" in loc and "X-Amz-Expires=900" in loc, "presigned: " + loc)
            with urllib.request.urlopen(loc, timeout=60) as u:
                got = u.read()
            check(got == want[i], "the presigned URL gives the result's bytes")
            check(plain.get(it["result_url"]).body == want[i], "and the streamed body too")
        print("ok")
    finally:
        for s in (svc, plain):
            if s:
                s.close()
        s3.close()


main()
