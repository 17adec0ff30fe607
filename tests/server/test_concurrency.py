# SPDX-License-Identifier: MIT
# 50 concurrent clients each submit a job, follow it and download its result; every job completes
# with the right bytes, and synchronous /process requests in parallel all succeed.
import threading

import numpy as np

from srvutil import Server, check, decode, encode, image

s = None
try:
    s = Server("--quiet", "--threads", "2")
    N = 50
    srcs = [encode(image(96, 64, seed=i), ".png") for i in range(N)]
    errors, done = [], [0]
    lock = threading.Lock()

    def client(i):
        try:
            r = s.submit([("c%02d.png" % i, srcs[i])], pipeline="invert", fmt="png")
            if r.status != 201:
                raise AssertionError("submit %d: %d %r" % (i, r.status, r.body[:200]))
            j = s.wait(r.json()["id"], timeout=120)
            if j["state"] != "done":
                raise AssertionError("job %d: %s" % (i, j["state"]))
            body = s.get(j["items"][0]["result_url"]).body
            if not np.array_equal(decode(body), 255 - decode(srcs[i])):
                raise AssertionError("job %d: wrong result" % i)
            r = s.request("POST", "/api/v1/process?pipeline=invert&format=png", body=srcs[i])
            if r.status != 200 or not np.array_equal(decode(r.body), 255 - decode(srcs[i])):
                raise AssertionError("process %d: %d" % (i, r.status))
            with lock:
                done[0] += 1
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    check(not errors, "errors: %s" % errors[:5])
    check(done[0] == N, "%d of %d clients finished" % (done[0], N))
    jobs = s.get("/api/v1/jobs").json()["jobs"]
    check(len(jobs) == N and all(j["state"] == "done" for j in jobs), "all jobs done")
    check(s.healthy(), "healthy")
    print("ok")
finally:
    if s:
        s.close()
