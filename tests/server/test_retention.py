# SPDX-License-Identifier: MIT
# Retention (issue 9): DELETE of a finished job deletes it and frees the blobs no other job uses
# (shared inputs stay); --keep deletes finished jobs by itself; blobs nothing refers to (an
# interrupted upload's) are collected when the server starts; `dip token revoke --purge` deletes
# a user's data; /metrics shows the disk use.
import os
import subprocess
import time

from srvutil import DIP, Server, check, encode, image


def blobs(data):
    out = set()
    root = os.path.join(data, "blobs")
    for d in os.listdir(root):
        for f in os.listdir(os.path.join(root, d)):
            out.add(d + f)
    return out


s = None
try:
    x = encode(image(64, 48, 1), ".png")
    y = encode(image(64, 48, 2), ".png")
    s = Server("--quiet")
    a = s.wait(s.submit([("x.png", x)], pipeline="invert").json()["id"])
    b = s.wait(s.submit([("x.png", x), ("y.png", y)], pipeline="gray").json()["id"])
    before = blobs(s.data)
    check(len(before) == 5, "x, y and three results: %d blobs" % len(before))
    r = s.request("DELETE", "/api/v1/jobs/" + a["id"])
    check(r.status == 200 and r.json()["deleted"] and r.json()["freed_bytes"] > 0,
          "DELETE a: %r" % r.body[:200])
    check(s.get("/api/v1/jobs/" + a["id"]).status == 404, "a is gone")
    check(len(blobs(s.data)) == 4, "only a's result went (x is b's too): %d" % len(blobs(s.data)))
    r = s.get("/api/v1/jobs/%s/results/1" % b["id"])
    check(r.status == 200, "b's results stay downloadable")
    r = s.request("DELETE", "/api/v1/jobs/" + b["id"])
    check(r.status == 200 and r.json()["deleted"], "DELETE b")
    check(blobs(s.data) == set(), "every blob freed: %r" % blobs(s.data))
    m = s.get("/metrics").body.decode()
    check("dip_blob_bytes " in m and "dip_jobs_deleted_total 2" in m, "metrics: %s" % m[-600:])

    # An interrupted upload's blob (no row refers to it) is collected when the server starts; a
    # job's blob is kept.
    c = s.wait(s.submit([("y.png", y)], pipeline="invert").json()["id"])
    s.stop()
    orphan = "ab" + "c" * 62
    os.makedirs(os.path.join(s.data, "blobs", "ab"), exist_ok=True)
    with open(os.path.join(s.data, "blobs", "ab", "c" * 62), "wb") as f:
        f.write(b"half an upload")
    kept = blobs(s.data) - {orphan}
    s.start()
    check(orphan not in blobs(s.data), "the orphan blob was collected at start")
    check(kept <= blobs(s.data), "job blobs kept")
    check(s.get("/api/v1/jobs/%s/results/0" % c["id"]).status == 200, "c still downloads")
    s.close()

    # --keep: finished jobs go by themselves.
    s = Server("--quiet", "--keep", "2s")
    d = s.wait(s.submit([("x.png", x)], pipeline="invert").json()["id"])
    end = time.time() + 15
    while time.time() < end and s.get("/api/v1/jobs/" + d["id"]).status == 200:
        time.sleep(0.25)
    check(s.get("/api/v1/jobs/" + d["id"]).status == 404, "--keep 2s deleted the job")
    check(blobs(s.data) == set(), "and its blobs: %r" % blobs(s.data))
    s.close()

    # dip token revoke --purge deletes a user's data and nobody else's.
    s = Server("--quiet")
    alice, bob = s.token_create("alice"), s.token_create("bob")
    ja = s.wait(s.submit([("x.png", x)], pipeline="invert", token=alice).json()["id"],
                token=alice)
    jb = s.wait(s.submit([("x.png", x)], pipeline="gray", token=bob).json()["id"], token=bob)
    s.stop()
    out = subprocess.run([DIP, "token", "revoke", "--purge", "alice", "--data", s.data],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(out.returncode == 0, "revoke --purge: %s" % out.stderr.decode())
    check(b"deleted 1 job" in out.stderr, "says what it deleted: %s" % out.stderr.decode())
    s.start()
    root = s.token_create("root", admin=True)
    ids = [j["id"] for j in s.get("/api/v1/jobs", token=root).json()["jobs"]]
    check(ids == [jb["id"]], "only bob's job is left: %r" % ids)
    check(s.get("/api/v1/jobs/%s/results/0" % jb["id"], token=bob).status == 200,
          "bob's result (same input as alice's) downloads")
    check(len(blobs(s.data)) == 2, "bob's input and result remain: %d" % len(blobs(s.data)))
    check(s.get("/api/v1/jobs", token=alice).status == 401, "alice's token is revoked")
    del ja
    print("ok")
finally:
    if s:
        s.close()
