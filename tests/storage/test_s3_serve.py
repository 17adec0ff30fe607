# SPDX-License-Identifier: MIT
# The service with its blobs in object storage, encrypted at rest: `dip serve --blobs
# s3://blobs/svc --encrypt-key K` against a real s3rver on loopback survives kill -9 mid-job and
# a restart with nothing lost (results byte-identical to a plain local run, one result per item),
# keeps no blob in the data folder, and stores only sealed bytes (no 64-byte window of an input
# appears in any object). Without the key, with another key, and after a byte of a stored blob
# is flipped, reading a result is an error that names the blob, never other bytes.
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
from srvutil import Server, encode, image  # noqa: E402
from s3util import S3rver, check, dip, env  # noqa: E402

N = 8
PIPE = "median(size=7) | gaussian(size=5)"
files = [("img%02d.png" % i, encode(image(640, 480, seed=i), ".png")) for i in range(N)]


def windows(data, step=997):
    return [data[i:i + 64] for i in range(0, len(data) - 64, step)]


def main():
    s3 = S3rver(["blobs"])
    ref = svc = None
    try:
        e = env(s3.url)
        tmp = os.path.join(s3.dir, "keys")
        os.makedirs(tmp)
        key = os.path.join(tmp, "blob.key")
        other = os.path.join(tmp, "other.key")
        dip(["key", "create", key], e, check_rc=0)
        dip(["key", "create", other], e, check_rc=0)

        # Reference: the data folder, no key.
        ref = Server("--threads", "2", "--quiet")
        j = ref.wait(ref.submit(files, pipeline=PIPE, fmt="png").json()["id"], timeout=240)
        check(j["state"] == "done", "reference run done")
        want = [ref.get(it["result_url"]).body for it in j["items"]]
        ref.close()
        ref = None

        args = ("--threads", "2", "--quiet", "--blobs", "s3://blobs/svc", "--encrypt-key", key)
        svc = Server(*args, env=e)
        check("s3://blobs/svc, encrypted" in svc.proc.stdout.readline().decode(),
              "banner names the blob store")
        jid = svc.submit(files, pipeline=PIPE, fmt="png").json()["id"]
        end = time.time() + 120
        while time.time() < end:
            cur = svc.get("/api/v1/jobs/" + jid).json()
            ndone = sum(it["state"] == "done" for it in cur["items"])
            if 1 <= ndone < N - 1:
                break
            check(cur["state"] != "done", "job finished before it could be killed")
            time.sleep(0.02)
        svc.kill9()
        check(1 <= ndone < N, "killed with %d of %d done" % (ndone, N))
        svc.start()
        j = svc.wait(jid, timeout=240)
        check(j["state"] == "done", "resumed job: %s" % j["state"])
        got = [svc.get(it["result_url"]).body for it in j["items"]]
        for i in range(N):
            check(got[i] == want[i], "item %d differs from the local run" % i)
        rid = j["items"][0]["result_url"]
        svc.stop()

        # Nothing in the data folder's blobs; everything in the bucket, sealed.
        local = os.path.join(svc.data, "blobs")
        check(not os.path.exists(local) or not any(f for _, _, fs in os.walk(local) for f in fs),
              "blobs written to the data folder")
        p = dip(["s3", "ls", "s3://blobs/svc/"], e, check_rc=0)
        keys = [line.split(None, 1)[1] for line in p.stdout.splitlines()]
        check(len(keys) >= 2 * N, "want inputs and results in the bucket: %r" % keys)
        probes = [w for _, d in files for w in windows(d)] + [w for d in want for w in windows(d)]
        raw = {}
        for k in keys:
            path = os.path.join(tmp, "raw")
            dip(["s3", "get", "s3://blobs/" + k, path], e, check_rc=0)
            raw[k] = open(path, "rb").read()
            check(raw[k][:8] == b"DIPSEAL1", "object %s is not sealed" % k)
        joined = b"".join(raw.values())
        seen = sum(w in joined for w in probes)
        check(seen == 0, "%d of %d plaintext windows appear in the bucket" % (seen, len(probes)))

        # Without the key: refused, naming the blob.
        svc.args = ["--threads", "2", "--quiet", "--blobs", "s3://blobs/svc"]
        svc.start()
        r = svc.get(rid)
        check(r.status == 500 and b"encrypted" in r.body and b"blob " in r.body,
              "result read without the key: %d %r" % (r.status, r.body[:300]))
        check(not r.body.startswith(b"\x89PNG"), "image bytes without the key")
        svc.stop()
        # With another key.
        svc.args = list(args[:-1]) + [other]
        svc.start()
        r = svc.get(rid)
        check(r.status == 500 and b"sealed with another key" in r.body,
              "another key: %d %r" % (r.status, r.body[:300]))
        svc.stop()
        # A flipped byte in every stored result: detected, never other pixels.
        for k, data in raw.items():
            bad = bytearray(data)
            bad[len(bad) // 2] ^= 1
            path = os.path.join(tmp, "bad")
            open(path, "wb").write(bytes(bad))
            dip(["s3", "put", path, "s3://blobs/" + k], e, check_rc=0)
        svc.args = list(args)
        svc.start()
        r = svc.get(rid)
        check(r.status == 500 and b"authentication failed" in r.body and b"blob " in r.body,
              "tampered blob: %d %r" % (r.status, r.body[:300]))
        # A new job on tampered inputs fails per item with the blob named; the server lives on.
        check(svc.healthy(), "server healthy after refusing tampered blobs")
        svc.stop()
        print("ok: killed with %d/%d done, resumed; sealed in s3; refusals named the blob"
              % (ndone, N))
    finally:
        for s in (ref, svc):
            if s:
                s.close()
        s3.close()


main()
