# SPDX-License-Identifier: MIT
# Users and roles: tokens from `dip token`, 401 with WWW-Authenticate without one, users who cannot
# see, list, download or cancel each other's jobs (404), an admin who sees everything and the
# cluster, revocation, and the refusal to listen beyond loopback without tokens.
import subprocess

from srvutil import DIP, Server, check, encode, image

s = None
try:
    s = Server("--quiet")
    check("warning" in s.proc.stdout.readline().decode(), "open mode prints a warning")
    alice = s.token_create("alice")
    bob = s.token_create("bob")
    root = s.token_create("root", admin=True)
    check(alice.startswith("dip_") and alice != bob, "tokens look right")
    out = subprocess.run([DIP, "token", "create", "alice", "--data", s.data],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(out.returncode != 0 and b"exists" in out.stderr, "duplicate user refused")
    out = subprocess.run([DIP, "token", "list", "--data", s.data], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    check("alice" in out and "root" in out and "admin" in out and alice not in out,
          "list shows users, never tokens")

    # Tokens exist now: auth is required even on loopback.
    r = s.get("/api/v1/jobs", token="")
    check(r.status == 401, "no token: %d" % r.status)
    check(r.header("WWW-Authenticate", ).startswith("Bearer"), "WWW-Authenticate")
    check(r.json()["error"]["code"] == "EAUTH", "error code")
    r = s.get("/api/v1/jobs", token="dip_wrong")
    check(r.status == 401, "bad token: %d" % r.status)
    check(s.get("/healthz", token="").status == 200, "healthz stays open")
    r = s.get("/api/v1/whoami", token=alice)
    check(r.json() == {"name": "alice", "admin": False, "auth_required": True}, "whoami alice")
    r = s.get("/api/v1/whoami", token=root)
    check(r.json()["admin"] is True, "whoami root")

    files = [("x.png", encode(image(64, 64, 1), ".png"))]
    ja = s.submit(files, pipeline="invert", token=alice).json()
    jb = s.submit(files, pipeline="gray", token=bob).json()
    check(ja["owner"] == "alice" and jb["owner"] == "bob", "owners")
    s.wait(ja["id"], token=alice)
    s.wait(jb["id"], token=bob)

    # Bob cannot see, download, stream or cancel Alice's job.
    for method, path in (("GET", "/api/v1/jobs/%s"), ("GET", "/api/v1/jobs/%s/results/0"),
                         ("GET", "/api/v1/jobs/%s/archive.zip"), ("GET", "/api/v1/jobs/%s/events"),
                         ("DELETE", "/api/v1/jobs/%s")):
        r = s.request(method, path % ja["id"], token=bob)
        check(r.status == 404, "bob %s %s: %d" % (method, path, r.status))
    lst = [j["id"] for j in s.get("/api/v1/jobs", token=bob).json()["jobs"]]
    check(lst == [jb["id"]], "bob lists only his job: %r" % lst)
    check(s.get("/api/v1/jobs/%s" % ja["id"], token=alice).json()["state"] == "done",
          "alice's job untouched")
    check(s.get("/api/v1/cluster", token=alice).status == 403, "cluster is admin only")
    # GETs may carry the token in the query (EventSource, links); other methods may not.
    r = s.get("/api/v1/jobs/%s/results/0?access_token=%s" % (ja["id"], alice), token="")
    check(r.status == 200, "access_token download: %d" % r.status)
    r = s.get("/api/v1/jobs/%s?access_token=%s" % (ja["id"], bob), token="")
    check(r.status == 404, "bob's access_token on alice's job: %d" % r.status)
    r = s.request("DELETE", "/api/v1/jobs/%s?access_token=%s" % (ja["id"], alice), token="")
    check(r.status == 401, "access_token is for GET only: %d" % r.status)
    check(s.get("/metrics", token=alice).status == 403, "metrics is admin only")

    # The admin sees everything.
    lst = [j["id"] for j in s.get("/api/v1/jobs", token=root).json()["jobs"]]
    check(set(lst) == {ja["id"], jb["id"]}, "admin lists all")
    check(s.get("/api/v1/jobs/%s/results/0" % ja["id"], token=root).status == 200,
          "admin downloads")
    check(s.get("/api/v1/cluster", token=root).status == 200, "admin sees the cluster")

    # Users take turns: while alice's slow job runs she queues another, then bob queues one;
    # bob's runs before alice's second.
    slow = image(2000, 1500, 4)
    a1 = s.submit([("a1.png", encode(slow, ".png"))], pipeline="median(size=15) | bilateral",
                  token=alice).json()
    a2 = s.submit(files, pipeline="gaussian", token=alice).json()
    b1 = s.submit(files, pipeline="gaussian", token=bob).json()
    for j, tok in ((a1, alice), (a2, alice), (b1, bob)):
        j.update(s.wait(j["id"], token=tok))
    check(a1["finished"] <= b1["finished"] <= a2["finished"],
          "turns: a1 %.3f b1 %.3f a2 %.3f" % (a1["finished"], b1["finished"], a2["finished"]))

    # A second server on the same data folder is refused.
    out = subprocess.run([DIP, "serve", "--listen", "127.0.0.1:0", "--data", s.data],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(out.returncode != 0 and b"another dip serve" in out.stderr, "second server refused")

    # Revocation takes effect at once.
    subprocess.run([DIP, "token", "revoke", "bob", "--data", s.data], check=True,
                   stderr=subprocess.DEVNULL)
    check(s.get("/api/v1/jobs", token=bob).status == 401, "revoked token refused")
    out = subprocess.run([DIP, "token", "revoke", "bob", "--data", s.data],
                         stderr=subprocess.PIPE)
    check(out.returncode != 0, "revoking twice fails")
    s.close()
    s = None

    # Beyond loopback without tokens: refuse to start with a clear message.
    import tempfile
    d = tempfile.mkdtemp(prefix="dip-server-test-")
    out = subprocess.run([DIP, "serve", "--listen", "0.0.0.0:0", "--data", d],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(out.returncode != 0 and b"token" in out.stderr, "refuses: %r" % out.stderr)
    # With a token it starts.
    subprocess.run([DIP, "token", "create", "adm", "--admin", "--data", d], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = Server("--quiet", data=d, listen="0.0.0.0:0")
    check(s.get("/api/v1/jobs", token="").status == 401, "non-loopback requires tokens")
    print("ok")
finally:
    if s:
        s.close()
