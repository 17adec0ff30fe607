# SPDX-License-Identifier: MIT
# Usage and cost per user (issue 16), on a real `dip serve`: jobs by two users; each sees their own
# figures on GET /api/v1/usage and no one else's (403 for another's); jobs, items and bytes are
# exact (bytes out = the results downloaded); CPU seconds are within 10% of the server process's
# CPU time (/proc/PID/stat) measured around the jobs; an admin sees both; the price list gives a
# cost; `dip usage` reads the same figures from the store; they survive a restart; deleting a job
# lowers the bytes stored; /metrics keeps its per-user label values bounded (top 10 + "(other)").
import json
import os
import sqlite3
import subprocess
import time

from srvutil import DIP, Server, check, encode, fail, image, sanitized

CPU_HOUR, GB_MONTH = 0.05, 0.02


def proc_cpu(pid):
    """utime + stime of the process, all threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def usage(s, token, query=""):
    r = s.get("/api/v1/usage" + query, token=token)
    check(r.status == 200, "usage%s: %d %r" % (query, r.status, r.body[:300]))
    return r.json()


def row(u, name):
    rows = [x for x in u["users"] if x["user"] == name]
    check(len(rows) == 1, "one row for %s in %r" % (name, u))
    return rows[0]


FIXED = ("user", "jobs", "items", "bytes_in", "bytes_out", "cpu_seconds", "bytes_stored")


def fixed(r):
    """The figures that do not grow with the clock (gb_months and the storage cost do)."""
    return {k: r[k] for k in FIXED}


def wait_slowly(s, job_id, token):
    """Polls every 0.25 s: the test's own requests are server CPU that no user's items spent."""
    end = time.time() + 600
    while time.time() < end:
        j = s.get("/api/v1/jobs/" + job_id, token=token).json()
        if j["state"] in ("done", "failed", "cancelled"):
            return j
        time.sleep(0.25)
    fail("job %s did not finish" % job_id)


s = None
try:
    s = Server("--quiet", "--threads", "2", "--cost-cpu-hour", str(CPU_HOUR),
               "--cost-gb-month", str(GB_MONTH))
    alice = s.token_create("alice")
    bob = s.token_create("bob")
    root = s.token_create("root", admin=True)
    # Nothing used yet: a user sees one row, their own, all zero.
    u = usage(s, alice)
    check([x["user"] for x in u["users"]] == ["alice"], "fresh: only alice's row: %r" % u)
    check(row(u, "alice")["jobs"] == 0 and row(u, "alice")["cpu_seconds"] == 0, "fresh: zeros")
    t_start = time.time()

    # CPU-heavy jobs, so that the server's own work (HTTP, polling) stays a small share.
    big = 800 if sanitized() else 1600
    a_files = [("a%d.png" % i, encode(image(big, big, 10 + i), ".png")) for i in range(2)]
    b_files = [("b0.jpg", encode(image(big, big, 20), ".jpg"))]
    pid = s.proc.pid
    cpu0 = proc_cpu(pid)
    ja = s.submit(a_files, pipeline="bilateral(d=21) | median(size=9)", token=alice).json()
    jb = s.submit(b_files, pipeline="bilateral(d=21) | sharpen", fmt="webp", token=bob).json()
    wait_slowly(s, ja["id"], alice)
    wait_slowly(s, jb["id"], bob)
    cpu1 = proc_cpu(pid)
    process_cpu = cpu1 - cpu0

    def outs(job, token, n):
        total = 0
        for i in range(n):
            r = s.get("/api/v1/jobs/%s/results/%d" % (job, i), token=token)
            check(r.status == 200, "result %d: %d" % (i, r.status))
            total += len(r.body)
        return total

    a_in = sum(len(d) for _, d in a_files)
    b_in = sum(len(d) for _, d in b_files)
    a_out = outs(ja["id"], alice, 2)
    b_out = outs(jb["id"], bob, 1)

    # Each user sees their own figures, and only theirs.
    ua = usage(s, alice)
    ub = usage(s, bob)
    check([x["user"] for x in ua["users"]] == ["alice"], "alice sees only alice: %r" % ua)
    check([x["user"] for x in ub["users"]] == ["bob"], "bob sees only bob: %r" % ub)
    ra, rb = row(ua, "alice"), row(ub, "bob")
    for r, jobs, items, bi, bo in ((ra, 1, 2, a_in, a_out), (rb, 1, 1, b_in, b_out)):
        want = {"jobs": jobs, "items": items, "bytes_in": bi, "bytes_out": bo,
                "bytes_stored": bi + bo}
        got = {k: r[k] for k in want}
        check(got == want, "%s: exact figures %r, want %r" % (r["user"], got, want))
    # A user cannot read another's usage.
    r = s.get("/api/v1/usage?user=bob", token=alice)
    check(r.status == 403 and r.json()["error"]["code"] == "EAUTH", "alice asks for bob's: %d"
          % r.status)
    check(s.get("/api/v1/usage", token="").status == 401, "no token: 401")
    check(usage(s, alice, "?user=alice")["users"][0]["user"] == "alice", "naming oneself is fine")

    # CPU: thread clocks around the items' work add up to the process's CPU time.
    user_cpu = ra["cpu_seconds"] + rb["cpu_seconds"]
    print("process CPU %.3f s, users' CPU %.3f s (alice %.3f, bob %.3f), ratio %.3f"
          % (process_cpu, user_cpu, ra["cpu_seconds"], rb["cpu_seconds"],
             user_cpu / process_cpu))
    check(process_cpu > 1.0, "the jobs took CPU: %.3f s" % process_cpu)
    check(abs(user_cpu - process_cpu) <= 0.10 * process_cpu,
          "users' CPU %.3f s not within 10%% of the process's %.3f s" % (user_cpu, process_cpu))
    check(ra["cpu_seconds"] > 0.2 and rb["cpu_seconds"] > 0.2, "both users spent CPU")

    # The admin sees everyone; the price list gives a cost.
    ur = usage(s, root)
    check(sorted(x["user"] for x in ur["users"]) == ["alice", "bob"], "admin sees both: %r" % ur)
    check(ur["prices"] == {"cpu_hour": CPU_HOUR, "gb_month": GB_MONTH}, "prices %r" % ur["prices"])
    check(fixed(row(ur, "alice")) == fixed(ra), "admin's alice row = alice's own")
    c = ra["cost"]
    check(abs(c["cpu"] - ra["cpu_seconds"] / 3600 * CPU_HOUR) < 1e-9, "cpu cost %r" % c)
    check(c["storage"] > 0 and abs(c["storage"] - ra["gb_months"] * GB_MONTH) < 1e-12,
          "storage cost %r" % c)
    check(abs(c["total"] - c["cpu"] - c["storage"]) < 1e-12, "total cost %r" % c)
    # GB-months: what was stored, for how long; bounded by stored-now x the period.
    span = time.time() - t_start + 1
    check(0 < ra["gb_months"] <= (a_in + a_out) / 1e9 * span / (30 * 86400),
          "gb_months %r" % ra["gb_months"])

    # A period: nothing before the jobs, everything from the start on.
    r = usage(s, alice, "?until=%d" % int(t_start - 60))
    check(row(r, "alice")["jobs"] == 0 and row(r, "alice")["bytes_in"] == 0, "before: %r" % r)
    r = usage(s, alice, "?since=%d" % int(t_start - 60))
    check(row(r, "alice")["bytes_in"] == a_in, "since: %r" % r)
    day = time.strftime("%Y-%m-%d", time.gmtime(t_start))
    r = usage(s, alice, "?since=" + day)
    check(row(r, "alice")["jobs"] == 1, "since a date: %r" % r)
    r = s.get("/api/v1/usage?since=yesterday", token=alice)
    check(r.status == 400 and "since" in r.json()["error"]["message"], "bad since: %d" % r.status)

    # /metrics: per-user counters.
    m = s.get("/metrics", token=root).body.decode()
    check('dip_user_cpu_seconds_total{user="alice"}' in m and
          'dip_user_bytes_in_total{user="bob"} %d' % b_in in m, "per-user metrics")

    # `dip usage` reads the same figures from the store while the server runs.
    out = subprocess.run([DIP, "usage", "--data", s.data, "--json", "--cost-cpu-hour",
                          str(CPU_HOUR), "--cost-gb-month", str(GB_MONTH)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(out.returncode == 0, "dip usage --json: %r" % out.stderr)
    cli = json.loads(out.stdout)
    for name in ("alice", "bob"):
        a, b = row(cli, name), row(ur, name)
        for k in FIXED:
            check(a[k] == b[k], "dip usage %s %s: %r vs %r" % (name, k, a[k], b[k]))
    table = subprocess.run([DIP, "usage", "--data", s.data, "--since", day],
                           stdout=subprocess.PIPE, check=True).stdout.decode()
    print(table)
    check("alice" in table and "bob" in table and "cpu s" in table, "table: %r" % table)
    bad = subprocess.run([DIP, "usage", "--data", s.data, "--since", "soon"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(bad.returncode == 2 and b"since" in bad.stderr, "bad --since refused")

    # Survives a restart.
    s.stop()
    s.start()
    ua2 = usage(s, alice)
    check(fixed(row(ua2, "alice")) == fixed(ra), "after restart: %r vs %r" % (row(ua2, "alice"), ra))
    check(row(ua2, "alice")["gb_months"] > ra["gb_months"], "storage time goes on")

    # Deleting a job: the bytes it held are no longer stored; what was used stays used.
    r = s.request("DELETE", "/api/v1/jobs/" + jb["id"], token=bob)
    check(r.status in (200, 204), "delete: %d" % r.status)
    rb2 = row(usage(s, bob), "bob")
    check(rb2["bytes_stored"] == 0 and rb2["bytes_in"] == b_in and rb2["items"] == 1,
          "after delete: %r" % rb2)

    # The table an operator reads, with the price list.
    print(subprocess.run([DIP, "usage", "--data", s.data, "--cost-cpu-hour", str(CPU_HOUR),
                          "--cost-gb-month", str(GB_MONTH)],
                         stdout=subprocess.PIPE, check=True).stdout.decode())

    # Bounded label values: 11 more users with one synchronous image each.
    small = encode(image(32, 32, 3), ".png")
    for i in range(11):
        tok = s.token_create("user%02d" % i)
        r = s.request("POST", "/api/v1/process?pipeline=invert", body=small,
                      headers={"Content-Type": "application/octet-stream"}, token=tok)
        check(r.status == 200, "process: %d %r" % (r.status, r.body[:200]))
    u0 = row(usage(s, root, "?user=user00"), "user00")
    check(u0["items"] == 1 and u0["bytes_in"] == len(small) and u0["jobs"] == 0,
          "/process counts: %r" % u0)
    m = s.get("/metrics", token=root).body.decode()
    labels = {line.split("{")[1].split("}")[0] for line in m.splitlines()
              if line.startswith("dip_user_items_total{")}
    check(len(labels) == 11 and 'user="(other)"' in labels,
          "top 10 + other: %r" % sorted(labels))
    total = sum(float(line.rsplit(" ", 1)[1]) for line in m.splitlines()
                if line.startswith("dip_user_items_total{"))
    check(total == 2 + 1 + 11, "every item counted once across the series: %r" % total)

    # A store from before usage was kept (the tables dropped): the next start counts what its
    # jobs hold, from when they were created; their CPU time was never measured.
    s.stop()
    db = sqlite3.connect(os.path.join(s.data, "dip.db"))
    db.executescript("DROP TRIGGER usage_sum; DROP TABLE usage; DROP TABLE usage_total;")
    db.close()
    s.start()
    ru = usage(s, root)
    check([x["user"] for x in ru["users"]] == ["alice"], "seeded from the jobs: %r" % ru)
    want = {"user": "alice", "jobs": 1, "items": 2, "bytes_in": a_in, "bytes_out": a_out,
            "cpu_seconds": 0, "bytes_stored": a_in + a_out}
    check(fixed(ru["users"][0]) == want, "seeded: %r, want %r" % (ru["users"][0], want))
    print("OK")
finally:
    if s is not None:
        s.close()
