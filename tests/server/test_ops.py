# SPDX-License-Identifier: MIT
# Operating dip serve (docs/deploy.md, issue 16): /readyz, the graceful SIGTERM, and the log lines.
# - /readyz is 200 while the store answers, the executor works and the disk is above its floor;
#   503 with the reason under a floor no disk meets, and while shutting down.
# - SIGTERM during a job: new work is refused (503), the batch in flight finishes within
#   --shutdown-grace, the process exits 0 well within the grace, and after a restart the job
#   completes with every item once: nothing lost, nothing duplicated, finished items unchanged.
# - One JSON line per request (time, method, route pattern, status, bytes, duration, user,
#   remote address) and per job event (created, started, finished with counts and seconds,
#   failed with the reason); never a token, not even one sent in the query string. Text format
#   by default; --log-level 0 writes job events but nothing per request.
import json
import os
import signal
import sqlite3
import time

from srvutil import Server, check, encode, image

N = 12
PIPE = "median(size=9) | gaussian(size=7)"
GRACE = 20
files = [("img%02d.png" % i, encode(image(640, 480, seed=i), ".png")) for i in range(N)]


def log_lines(srv):
    out = []
    for line in srv.read_log().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


a = b = c = None
try:
    # ---- Readiness, logs and tokens ----
    a = Server("--threads", "1", "--log-format", "json", "--shutdown-grace", str(GRACE))
    admin = a.token_create("root", admin=True)
    alice = a.token_create("alice")
    a.token = alice
    r = a.get("/readyz", token="")
    check(r.status == 200 and r.json() == {"status": "ready"}, "readyz: %d %r" % (r.status, r.body))
    check(a.get("/api/v1/jobs", token="wrong-" + alice).status == 401, "a bad token is refused")
    check(a.get("/api/v1/jobs?access_token=" + alice, token="").status == 200, "token in the query")
    check(a.get("/metrics", token=admin).status == 200, "metrics as admin")

    # A job that fails at run time (a PNG whose header is fine but whose data is garbled).
    good = bytearray(encode(image(64, 48, seed=99), ".png"))
    at = good.find(b"IDAT")
    for k in range(at + 20, at + 60):
        good[k] ^= 0x5A
    bad = a.submit([("cut.png", bytes(good))], pipeline="invert", fmt="png").json()
    bad = a.wait(bad["id"], timeout=120)
    check(bad["state"] == "failed", "the cut PNG fails: %s" % bad["state"])

    # ---- SIGTERM during a job ----
    j = a.submit(files, pipeline=PIPE, fmt="png").json()
    jid = j["id"]
    end = time.time() + 120
    while time.time() < end:
        cur = a.get("/api/v1/jobs/" + jid).json()
        if cur["state"] == "running":
            break
        time.sleep(0.01)
    done0 = sum(it["state"] == "done" for it in cur["items"])
    check(cur["state"] == "running", "job running before SIGTERM")
    t0 = time.time()
    a.proc.send_signal(signal.SIGTERM)
    # While the batch finishes: not ready, and new work is refused with 503.
    saw_503 = False
    while a.proc.poll() is None and time.time() - t0 < GRACE:
        try:
            r = a.get("/readyz", token="", timeout=5)
        except OSError:
            break
        if r.status == 503:
            check(r.json()["error"] == {"code": "EBUSY", "message": "not ready: shutting down"},
                  "readyz while stopping: %r" % r.body)
            s = a.submit([("small.png", encode(image(32, 24), ".png"))], pipeline="invert")
            check(s.status == 503 and s.json()["error"]["code"] == "EBUSY",
                  "a job while stopping: %d %r" % (s.status, s.body[:200]))
            check(s.header("Retry-After") is not None, "503 has Retry-After")
            saw_503 = True
            break
        time.sleep(0.01)
    a.proc.wait(GRACE + 30)
    took = time.time() - t0
    check(a.proc.returncode == 0, "exit status after SIGTERM: %d" % a.proc.returncode)
    check(took < GRACE, "stopped %.1f s after SIGTERM, over the %d s grace" % (took, GRACE))
    check(saw_503, "readyz answered 503 while the batch finished")
    db = sqlite3.connect(os.path.join(a.data, "dip.db"))
    done1 = db.execute("SELECT COUNT(*) FROM items WHERE job = ? AND state = 'done'",
                       (jid,)).fetchone()[0]
    shas = dict(db.execute("SELECT idx, sha FROM results WHERE job = ?", (jid,)).fetchall())
    db.close()
    check(done1 > done0, "the batch in flight finished during the grace (%d -> %d)"
          % (done0, done1))
    check(done1 < N, "the job was not done before SIGTERM (%d of %d)" % (done1, N))
    check(len(shas) == done1, "a result for each done item")

    a.stop()
    a.start()
    j = a.wait(jid, timeout=240)
    check(j["state"] == "done", "resumed job done: %s" % j["state"])
    db = sqlite3.connect(os.path.join(a.data, "dip.db"))
    rows = db.execute("SELECT idx, COUNT(*) FROM results WHERE job = ? GROUP BY idx",
                      (jid,)).fetchall()
    check(len(rows) == N and all(n == 1 for _, n in rows), "one result per item: %r" % rows)
    after = dict(db.execute("SELECT idx, sha FROM results WHERE job = ?", (jid,)).fetchall())
    db.close()
    for i, sha in shas.items():
        check(after[i] == sha, "item %d, finished before SIGTERM, unchanged" % i)
    for it in j["items"]:
        check(a.get(it["result_url"]).status == 200, "result %d downloads" % it["index"])
    a.stop()

    # ---- The log lines ----
    text = a.read_log()
    for tok in (admin, alice):
        check(tok not in text, "a token appears in the log")
    lines = log_lines(a)
    reqs = [x for x in lines if x["event"] == "request"]
    for x in reqs:
        for k in ("time", "method", "route", "status", "bytes", "ms", "user", "remote"):
            check(k in x, "request line lacks %s: %r" % (k, x))
        check(x["remote"] == "127.0.0.1", "remote address: %r" % x)
        check(isinstance(x["status"], int) and isinstance(x["ms"], (int, float)), "types %r" % x)
    got = [(x["method"], x["route"], x["status"], x["user"]) for x in reqs]
    check(("GET", "/readyz", 200, "anonymous") in got or ("GET", "/readyz", 200, None) in got,
          "readyz line: %r" % got[:5])
    check(("GET", "/api/v1/jobs", 401, None) in got, "the refused request is logged: %r" % got)
    check(("GET", "/api/v1/jobs", 200, "alice") in got, "alice's request (query token)")
    check(("GET", "/metrics", 200, "root") in got, "root's request")
    check(("POST", "/api/v1/jobs", 201, "alice") in got, "the submission")
    check(("GET", "/api/v1/jobs/{id}", 200, "alice") in got, "the route pattern, not the URL")
    check(not any(jid in x["route"] for x in reqs), "no ids in routes")
    ok = [x for x in reqs if x["route"] == "/readyz" and x["status"] == 200][0]
    check(ok["bytes"] == len(b'{"status":"ready"}'), "bytes of /readyz: %r" % ok)
    if saw_503:
        check(("POST", "/api/v1/jobs", 503, "alice") in got, "the refused job while stopping")

    ev = {}
    for x in lines:
        if x["event"].startswith("job_") and x.get("job") in (jid, bad["id"]):
            ev.setdefault((x["job"], x["event"]), []).append(x)
    cr = ev[(jid, "job_created")][0]
    check(cr["user"] == "alice" and cr["items"] == N and cr["bytes_in"] > 0, "created %r" % cr)
    st = ev[(jid, "job_started")]
    check(len(st) == 2 and st[0]["pending"] == N and st[1]["pending"] == N - done1,
          "started twice (before and after the restart): %r" % st)
    fin = ev[(jid, "job_finished")]
    check(len(fin) == 1 and fin[0]["items_done"] == N and fin[0]["items_failed"] == 0
          and fin[0]["seconds"] > 0, "finished once: %r" % fin)
    fl = ev[(bad["id"], "job_failed")][0]
    check(fl["items_failed"] == 1 and "cut.png" in fl["reason"] and fl["user"] == "alice",
          "failed with the reason: %r" % fl)
    check((bad["id"], "job_finished") not in ev, "a failed job is not finished")
    check(any(x["event"] == "shutdown" and x["grace_s"] == GRACE for x in lines), "shutdown line")

    # ---- Text format, log level 0, the disk floor ----
    b = Server("--threads", "1", "--log-level", "0", "--ready-min-free", str(1 << 50))
    r = b.get("/readyz")
    check(r.status == 503 and r.json()["error"]["code"] == "EBUSY"
          and "under the floor" in r.json()["error"]["message"],
          "readyz under the disk floor: %r" % r.body)
    check(b.healthy(), "healthz still 200")
    j = b.submit(files[:1], pipeline="invert", fmt="png").json()
    b.wait(j["id"])
    b.stop()
    text = b.read_log()
    check("event=request" not in text, "--log-level 0 wrote request lines:\n" + text)
    check("event=job_finished job=%s user=anonymous items_done=1 items_failed=0" % j["id"] in text,
          "text job line:\n" + text)

    c = Server("--threads", "1")
    c.get("/readyz")
    c.stop()
    check("event=request method=GET route=/readyz status=200 bytes=18 " in c.read_log(),
          "text request line:\n" + c.read_log())
    print("ok: SIGTERM after %.1f s with %d -> %d of %d done; resumed; logs read" %
          (took, done0, done1, N))
finally:
    for s in (a, b, c):
        if s:
            s.close()
