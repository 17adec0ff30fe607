# SPDX-License-Identifier: MIT
# Issue 10, bug 8: the API says which images of a job actually run. On a one-thread server a job of
# four images runs them one at a time, so the job's items read queued, then running (one at a
# time), then done, never all running at once. A large image alone on a two-thread server runs its
# tiles on both threads, and its item reports its own percent while it runs.
import time

from srvutil import Server, check, encode, image

s = None
try:
    s = Server("--quiet", "--threads", "1")
    files = [("p%d.png" % i, encode(image(500, 500, seed=i), ".png")) for i in range(4)]
    r = s.submit(files, pipeline="median(size=15) | bilateral", fmt="png")
    check(r.status == 201, "submit: %d %r" % (r.status, r.body[:200]))
    jid = r.json()["id"]
    seen = []  # (running, queued, done) while the job runs
    max_running = 0
    end = time.time() + 240
    while time.time() < end:
        j = s.get("/api/v1/jobs/" + jid).json()
        states = [it["state"] for it in j["items"]]
        if j["state"] == "running":
            n = (states.count("running"), states.count("queued"), states.count("done"))
            seen.append(n)
            max_running = max(max_running, n[0])
            for it in j["items"]:
                check(it["state"] == "running" or it["percent"] is None,
                      "only a running item has a percent: %r" % it)
        if j["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.02)
    check(j["state"] == "done", "job done: %r" % j["state"])
    check(all(it["state"] == "done" and it["percent"] is None for it in j["items"]),
          "every item done, no percent: %r" % [(i["state"], i["percent"]) for i in j["items"]])
    check(max_running == 1, "one thread runs one image at a time, saw %d running" % max_running)
    check(any(r == 1 and q > 0 for r, q, _ in seen),
          "an image running while others wait queued: %r" % sorted(set(seen)))
    check(any(r == 1 and d > 0 for r, _, d in seen),
          "an image running after another is done: %r" % sorted(set(seen)))
    s.close()
    s = None

    # One large image on two threads: its tiles share the pool, and its own percent shows.
    s = Server("--quiet", "--threads", "2")
    big = image(2400, 1800, seed=7)
    big[100:1700, 100:2300] //= 4  # keeps the PNG small enough to upload quickly
    r = s.submit([("big.png", encode(big, ".png"))], pipeline="median(size=15) | bilateral",
                 fmt="png")
    check(r.status == 201, "submit big: %d %r" % (r.status, r.body[:200]))
    jid = r.json()["id"]
    percents = []
    end = time.time() + 240
    while time.time() < end:
        j = s.get("/api/v1/jobs/" + jid).json()
        it = j["items"][0]
        if it["state"] == "running" and it["percent"] is not None:
            percents.append(it["percent"])
            if 0 < it["percent"] < 100 and len(set(percents)) >= 2:
                break
        if j["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.02)
    check(any(0 < p < 100 for p in percents), "the large image's own percent: %r" % percents[-5:])
    check(percents == sorted(percents), "its percent only grows: %r" % percents)
    r = s.request("DELETE", "/api/v1/jobs/" + jid)
    check(r.status == 200, "cancel: %d" % r.status)
    print("ok: at most %d running of 4; a large image's percent went %s" %
          (max_running, " -> ".join("%g" % p for p in sorted(set(percents))[:6])))
finally:
    if s:
        s.close()
