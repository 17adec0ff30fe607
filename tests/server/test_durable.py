# SPDX-License-Identifier: MIT
# Durability: kill -9 during a batch job, restart on the same data folder, and the job completes
# with outputs byte-identical to an uninterrupted run, no result recorded twice, and results
# finished before the crash kept as they were. A job killed right after its 201 is not lost.
# `dip backup` copies the database consistently while the server works.
import os
import sqlite3
import subprocess
import time

from srvutil import DIP, Server, check, encode, image

N = 10
PIPE = "median(size=7) | gaussian(size=5)"
files = [("img%02d.png" % i, encode(image(640, 480, seed=i), ".png")) for i in range(N)]

ref = crash = None
try:
    # The uninterrupted run.
    ref = Server("--threads", "2", "--quiet")
    j = ref.submit(files, pipeline=PIPE, fmt="png").json()
    j = ref.wait(j["id"], timeout=240)
    check(j["state"] == "done", "reference run done")
    want = [ref.get(it["result_url"]).body for it in j["items"]]
    ref.close()
    ref = None

    # --shutdown-grace 0: SIGTERM interrupts the batch at once (test_ops covers the grace).
    crash = Server("--threads", "2", "--quiet", "--shutdown-grace", "0")
    j = crash.submit(files, pipeline=PIPE, fmt="png").json()
    jid = j["id"]
    # Wait until some but not all items are done, then kill -9.
    before = {}
    end = time.time() + 120
    while time.time() < end:
        cur = crash.get("/api/v1/jobs/" + jid).json()
        done = [it for it in cur["items"] if it["state"] == "done"]
        if 1 <= len(done) < N - 2:
            break
        check(cur["state"] != "done", "job finished before it could be killed; make it slower")
        time.sleep(0.02)
    # A consistent backup while it works.
    bak = os.path.join(crash.tmp, "backup.db")
    out = subprocess.run([DIP, "backup", bak, "--data", crash.data], stderr=subprocess.PIPE)
    check(out.returncode == 0, "dip backup: %s" % out.stderr.decode())
    bad = subprocess.run([DIP, "backup", bak + "2", "--data", os.path.join(crash.tmp, "none")],
                         stderr=subprocess.PIPE)
    check(bad.returncode != 0 and b"no database" in bad.stderr, "backup of a missing store")
    check(not os.path.exists(os.path.join(crash.tmp, "none")), "backup created nothing")
    db = sqlite3.connect(bak)
    check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "backup integrity")
    check(db.execute("SELECT COUNT(*) FROM jobs WHERE id = ?", (jid,)).fetchone()[0] == 1,
          "backup has the job")
    check(db.execute("SELECT COUNT(*) FROM items WHERE job = ?", (jid,)).fetchone()[0] == N,
          "backup has the items")
    db.close()

    cur = crash.get("/api/v1/jobs/" + jid).json()
    for it in cur["items"]:
        if it["state"] == "done":
            before[it["index"]] = crash.get(it["result_url"]).body
    crash.kill9()
    check(0 < len(before) < N, "killed mid-job with %d of %d done" % (len(before), N))

    # A second job acknowledged just before a crash.
    crash.start()
    j2 = crash.submit(files[:2], pipeline="invert", fmt="png").json()
    crash.kill9()

    crash.start()
    j = crash.wait(jid, timeout=240)
    check(j["state"] == "done", "resumed job done: %s" % j["state"])
    got = [crash.get(it["result_url"]).body for it in j["items"]]
    for i in range(N):
        check(got[i] == want[i], "item %d differs from the uninterrupted run" % i)
        if i in before:
            check(before[i] == got[i], "item %d changed after the restart" % i)
    j2 = crash.wait(j2["id"], timeout=60)
    check(j2["state"] == "done" and len(j2["items"]) == 2, "job acknowledged before kill -9 ran")

    # SIGTERM during a job: the server stops promptly and the job resumes on the next start.
    j3 = crash.submit(files, pipeline=PIPE + " | invert", fmt="png").json()
    end = time.time() + 60
    while time.time() < end and crash.get("/api/v1/jobs/" + j3["id"]).json()["state"] != "running":
        time.sleep(0.02)
    t0 = time.time()
    crash.stop()
    check(time.time() - t0 < 5, "SIGTERM took %.1f s" % (time.time() - t0))
    crash.start()
    j3 = crash.wait(j3["id"], timeout=240)
    check(j3["state"] == "done", "job interrupted by SIGTERM resumed: %s" % j3["state"])
    crash.stop()
    db = sqlite3.connect(os.path.join(crash.data, "dip.db"))
    rows = db.execute("SELECT idx, COUNT(*) FROM results WHERE job = ? GROUP BY idx",
                      (jid,)).fetchall()
    check(len(rows) == N and all(c == 1 for _, c in rows), "one result per item: %r" % rows)
    check(db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2 * N + 2,
          "no extra results")
    db.close()
    print("ok: killed with %d/%d done; resumed; outputs equal" % (len(before), N))
finally:
    for s in (ref, crash):
        if s:
            s.close()
