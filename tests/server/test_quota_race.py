# SPDX-License-Identifier: MIT
# The unfinished-jobs quota under a burst (issue 9, finding 7): with --max-jobs 5, 40 concurrent
# submissions of slow jobs create exactly 5 jobs; the others get 429. The check and the creation
# are one transaction.
import threading

from srvutil import Server, check, encode, image

s = None
try:
    s = Server("--quiet", "--max-jobs", "5", "--threads", "1")
    slow = encode(image(1600, 1200, 3), ".png")
    pipe = "median(size=41) | median(size=41) | median(size=41) | median(size=41)"
    results = []
    lock = threading.Lock()
    go = threading.Event()

    def submit():
        go.wait()
        r = s.submit([("s.png", slow)], pipeline=pipe)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=submit) for _ in range(40)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    ok = [r for r in results if r.status == 201]
    busy = [r for r in results if r.status == 429]
    jobs = s.get("/api/v1/jobs").json()["jobs"]
    check(len(ok) == 5 and len(jobs) == 5,
          "40 concurrent submissions with --max-jobs 5: %d accepted, %d jobs" % (len(ok),
                                                                                len(jobs)))
    check(len(busy) == 35, "the rest get 429: %d" % len(busy))
    for j in jobs:
        s.request("DELETE", "/api/v1/jobs/" + j["id"])
    check(s.healthy(), "healthy at the end")
    print("ok")
finally:
    if s:
        s.close()
