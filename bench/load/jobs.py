# SPDX-License-Identifier: MIT
# Job API throughput of `dip serve`: C clients each submit single-image jobs (a distinct small
# JPEG each, `invert | gray`), follow them to `done` and download the result; prints jobs/s end
# to end and the p50/p99 latency of the POST (which commits the job before answering).
#   DIP=build/dip /usr/bin/python3 bench/load/jobs.py [jobs] [clients]
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "harness"))
from srvutil import Server, encode, image  # noqa: E402

jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
srcs = [encode(image(320, 240, seed=i), ".jpg") for i in range(jobs + 1)]  # no cache hits
s = Server("--quiet", "--max-jobs", "100000")
lat, lock, errors = [], threading.Lock(), []
counter = [0]


def client():
    while True:
        with lock:
            if counter[0] >= jobs:
                return
            counter[0] += 1
            i = counter[0]
        t0 = time.time()
        r = s.submit([("img%d.jpg" % i, srcs[i])], pipeline="invert | gray", fmt="jpeg")
        t1 = time.time()
        if r.status != 201:
            errors.append(r.status)
            continue
        j = s.wait(r.json()["id"])
        s.get(j["items"][0]["result_url"])
        with lock:
            lat.append(t1 - t0)


try:
    t0 = time.time()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.time() - t0
    lat.sort()
    print("jobs %d, clients %d: %.1f jobs/s end to end; POST p50 %.1f ms, p99 %.1f ms; errors %d"
          % (jobs, clients, len(lat) / el, lat[len(lat) // 2] * 1e3,
             lat[int(len(lat) * 0.99)] * 1e3, len(errors)))
finally:
    s.close()
