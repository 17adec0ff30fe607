# SPDX-License-Identifier: MIT
# Hostile requests refused before they cost anything (issue 9's findings 1, 3, 6, 10, 11, 12, 13,
# 14): an unauthenticated upload is answered 401 from its headers, before its body is read; every
# step's output is checked against the limits at submission (422 naming the op and the limit,
# the same message and exit status as the CLI); a foreign Host (DNS rebinding) and a foreign
# Origin (CSRF) are refused; two Content-Length headers are refused; result names are unique;
# invalid UTF-8 never reaches a JSON body; a pipeline that no image can satisfy is refused at once;
# dip.db and its WAL are private to the user.
import json
import os
import socket
import stat
import subprocess
import tempfile
import time
import zipfile
import io

from srvutil import DIP, Server, check, encode, image, multipart

s = None


def raw(port, data, timeout=5, source="127.0.0.1"):
    c = socket.socket()
    c.bind((source, 0))
    c.settimeout(timeout)
    c.connect(("127.0.0.1", port))
    try:
        c.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out:
            b = c.recv(65536)
            if not b:
                break
            out += b
        return out
    except socket.timeout:
        return b""
    finally:
        c.close()


def err(r, status, code, what, needle=None):
    check(r.status == status, "%s: want %d, got %d %r" % (what, status, r.status, r.body[:300]))
    e = json.loads(r.body.decode("utf-8"))["error"]  # strict UTF-8: finding 12
    check(e["code"] == code, "%s: code %s != %s" % (what, e["code"], code))
    if needle:
        check(needle in e["message"], "%s: %r lacks %r" % (what, e["message"], needle))
    return e


try:
    small = encode(image(32, 24, 1), ".png")

    # ---- 1: a user exists, so uploads need a token; the 401 comes before the body ----
    s = Server("--quiet")
    s.token = s.token_create("alice")
    head = ("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: %d\r\n\r\n"
            % (s.port, 300 << 20)).encode()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(head + b"\0" * (1 << 20))  # 1 MiB of the announced 300 MiB
    c.settimeout(5)
    t0 = time.time()
    try:
        got = c.recv(4096)
    except socket.timeout:
        got = b""
    c.close()
    check(got.startswith(b"HTTP/1.1 401"),
          "unauthenticated 300 MiB upload answered before its body: %r after %.1fs"
          % (got[:40], time.time() - t0))
    # The same with a bad token; a good token still uploads.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(head.replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer nope\r\n\r\n", 1) + b"\0" * 4096)
    c.settimeout(5)
    try:
        got = c.recv(4096)
    except socket.timeout:
        got = b""
    c.close()
    check(got.startswith(b"HTTP/1.1 401"), "bad token refused before the body: %r" % got[:40])
    r = s.submit([("a.png", small)])
    check(r.status == 201, "a user's upload: %d %r" % (r.status, r.body[:200]))
    s.wait(r.json()["id"])
    s.close()

    # ---- open mode (loopback, no tokens) from here on ----
    s = Server("--quiet", "--max-pixels", "1000000")

    # ---- 6: DNS rebinding and CSRF ----
    r = s.get("/api/v1/jobs", headers={"Host": "rebound.evil.example"})
    check(r.status == 421, "foreign Host reads no jobs: %d %r" % (r.status, r.body[:100]))
    r = s.get("/api/v1/jobs", headers={"Host": "rebound.evil.example:%d" % s.port})
    check(r.status == 421, "foreign Host with port: %d" % r.status)
    for host in ("127.0.0.1:%d" % s.port, "localhost:%d" % s.port, "localhost"):
        r = s.get("/api/v1/jobs", headers={"Host": host})
        check(r.status == 200, "Host %s: %d" % (host, r.status))
    ct, body = multipart([("pipeline", "invert")], [("file", "a.png", small)])
    r = s.request("POST", "/api/v1/jobs", body=body,
                  headers={"Content-Type": ct, "Origin": "http://evil.example"})
    err(r, 403, "EAUTH", "cross-origin POST", "cross-origin")
    r = s.request("POST", "/api/v1/jobs", body=body,
                  headers={"Content-Type": ct, "Origin": "null"})
    check(r.status == 403, "Origin: null POST: %d" % r.status)
    r = s.request("POST", "/api/v1/jobs", body=body,
                  headers={"Content-Type": ct, "Origin": "http://127.0.0.1:%d" % s.port})
    check(r.status == 201, "same-origin POST: %d %r" % (r.status, r.body[:200]))
    jid = r.json()["id"]
    r = s.request("DELETE", "/api/v1/jobs/" + jid, headers={"Origin": "http://evil.example"})
    check(r.status == 403, "cross-origin DELETE: %d" % r.status)
    check(len(s.get("/api/v1/jobs").json()["jobs"]) == 1, "only the same-origin job exists")
    s.wait(jid)

    # ---- 10: two Content-Length headers ----
    out = raw(s.port, b"POST /api/v1/process?pipeline=invert HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 5\r\nContent-Length: 50\r\n\r\nhello")
    check(out.startswith(b"HTTP/1.1 400"), "two Content-Length headers: %r" % out[:60])
    out = raw(s.port, b"POST /api/v1/process?pipeline=invert HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
    check(out.startswith(b"HTTP/1.1 400"), "repeated Content-Length: %r" % out[:60])

    # ---- 12: invalid UTF-8 from the request never reaches a JSON body ----
    bad = "gaussian(size=\udcff\udcfe)".encode("utf-8", "surrogateescape")
    ct, body = multipart([], [("file", "a.png", small)])
    body = body.replace(b"--" + ct.split("=")[1].encode() + b"\r\n",
                        b"--" + ct.split("=")[1].encode() +
                        b"\r\nContent-Disposition: form-data; name=\"pipeline\"\r\n\r\n" + bad +
                        b"\r\n--" + ct.split("=")[1].encode() + b"\r\n", 1)
    r = s.request("POST", "/api/v1/jobs", body=body, headers={"Content-Type": ct})
    check(r.status == 400, "bad pipeline bytes: %d" % r.status)
    r.body.decode("utf-8")  # raises on invalid UTF-8
    json.loads(r.body)
    r = s.request("POST", "/api/v1/process?pipeline=%FF%FEinvert", body=small)
    check(r.status == 400, "process bad bytes: %d" % r.status)
    json.loads(r.body.decode("utf-8"))

    # ---- 14: a pipeline no image can satisfy is refused at once, in the CLI's words ----
    tmp = tempfile.mkdtemp(prefix="dip-hostile-")
    src = os.path.join(tmp, "a.png")
    with open(src, "wb") as f:
        f.write(small)
    cli = subprocess.run([DIP, "process", "-p", "median(size=4)", "-o",
                          os.path.join(tmp, "out.png"), src],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    e = err(s.submit([("a.png", small), ("b.png", small)], pipeline="median(size=4)"), 400,
            "EINVAL", "median(size=4)", "must be odd")
    check(e["message"] in cli.stderr.decode(), "same message as the CLI: %r vs %r"
          % (e["message"], cli.stderr.decode()))
    err(s.request("POST", "/api/v1/process?pipeline=median(size%3D4)", body=small), 400,
        "EINVAL", "process median(size=4)", "must be odd")
    # In the query, the options are refused from the request line, before any of a 200 MiB body.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(("POST /api/v1/jobs?pipeline=median(size%%3D4) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: %d\r\n\r\n"
               % (200 << 20)).encode() + b"\0" * 65536)
    c.settimeout(5)
    try:
        got = c.recv(4096)
    except socket.timeout:
        got = b""
    c.close()
    check(got.startswith(b"HTTP/1.1 400") and b"must be odd" in got,
          "options in the query refused before the body: %r" % got[:200])
    # In the form, before the files: the files are read and dropped, not kept or probed, and the
    # answer is the same 400 (libmicrohttpd answers once the body has been read).
    bnd = "dipB"
    head = ("--%s\r\nContent-Disposition: form-data; name=\"pipeline\"\r\n\r\nmedian(size=4)"
            "\r\n--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            "\r\n" % (bnd, bnd)).encode()
    body = head + b"\0" * (8 << 20) + ("\r\n--%s--\r\n" % bnd).encode()
    r = s.request("POST", "/api/v1/jobs", body=body,
                  headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
    err(r, 400, "EINVAL", "pipeline field before the files", "must be odd")
    # Query options are used when the form has none.
    ct, body = multipart([], [("file", "q.png", small)])
    r = s.request("POST", "/api/v1/jobs?pipeline=invert&format=bmp", body=body,
                  headers={"Content-Type": ct})
    check(r.status == 201 and r.json()["pipeline"] == "invert" and r.json()["format"] == "bmp",
          "options in the query: %d %r" % (r.status, r.body[:200]))
    s.wait(r.json()["id"])
    s.request("DELETE", "/api/v1/jobs/" + r.json()["id"])

    # ---- 3: every step's output against the limits, 422 naming the op and the limit ----
    for pipe, needle in (("resize(width=20000,height=20000)", "max_pixels"),
                         ("resize(width=1000000,height=1000000)", "max_width"),
                         ("resize(width=2000,height=2000) | crop(width=10,height=10)",
                          "max_pixels")):
        e = err(s.submit([("a.png", small)], pipeline=pipe), 422, "ETOOBIG", pipe, needle)
        check("resize output" in e["message"], "names the op: %r" % e["message"])
        r = s.request("POST", "/api/v1/process?pipeline=" +
                      pipe.replace(",", "%2C").replace("=", "%3D").replace(" ", "%20")
                      .replace("|", "%7C"), body=small)
        check(r.status in (400, 422), "process %s: %d %r" % (pipe, r.status, r.body[:200]))
        cli = subprocess.run([DIP, "process", "--max-pixels", "1000000", "-p", pipe, "-o",
                              os.path.join(tmp, "big.png"), src],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(cli.returncode == 3, "CLI exit status for %s: %d" % (pipe, cli.returncode))
        check(e["message"].split(": ", 1)[1] in cli.stderr.decode(),
              "CLI message for %s: %r vs %r" % (pipe, e["message"], cli.stderr.decode()))
        check(not os.path.exists(os.path.join(tmp, "big.png")), "CLI wrote nothing")
    check([j["id"] for j in s.get("/api/v1/jobs").json()["jobs"]] == [jid],
          "no refused job was recorded")

    # ---- 11: result names are unique within a job and its zip ----
    r = s.submit([("a.png", small), ("a.png", small), ("a-1.png", small)], pipeline="invert")
    j = s.wait(r.json()["id"])
    names = [it["result_name"] for it in j["items"]]
    check(len(set(names)) == 3, "unique result names: %r" % names)
    z = zipfile.ZipFile(io.BytesIO(s.get("/api/v1/jobs/%s/archive.zip" % j["id"]).body))
    check(sorted(z.namelist()) == sorted(names), "zip names %r vs %r" % (z.namelist(), names))

    # ---- 13: the database and its WAL are private ----
    for f in ("dip.db", "dip.db-wal"):
        p = os.path.join(s.data, f)
        if os.path.exists(p):
            mode = stat.S_IMODE(os.stat(p).st_mode)
            check(mode == 0o600, "%s mode %o" % (f, mode))
    check(os.path.exists(os.path.join(s.data, "dip.db-wal")), "WAL exists while serving")

    check(s.healthy(), "healthy at the end")
    s.close()

    # ---- 6 behind a proxy: --public-host names the server for Host and Origin ----
    s = Server("--quiet", "--public-host", "dip.example.com")
    check(s.get("/api/v1/jobs", headers={"Host": "dip.example.com"}).status == 200,
          "the public name as Host")
    check(s.get("/api/v1/jobs", headers={"Host": "other.example.com"}).status == 421,
          "another name")
    ct, body = multipart([("pipeline", "invert")], [("file", "a.png", small)])
    r = s.request("POST", "/api/v1/jobs", body=body,
                  headers={"Content-Type": ct, "Origin": "https://dip.example.com"})
    check(r.status == 201, "the public origin through a proxy that rewrites Host: %d" % r.status)
    s.wait(r.json()["id"])
    r = s.request("POST", "/api/v1/jobs", body=body,
                  headers={"Content-Type": ct, "Origin": "https://evil.example.com"})
    check(r.status == 403, "a foreign origin still: %d" % r.status)
    s.close()

    # ---- 1: a user's uploads in flight are capped while they stream (2 x --max-request) ----
    s = Server("--quiet", "--max-request", "1000000")
    conns = []
    for i in range(3):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                   "multipart/form-data; boundary=B\r\nContent-Length: 900000\r\n\r\n")
                  .encode() + b"\0" * 800000)
        conns.append(c)
        time.sleep(0.3)
    answers = []
    for c in conns:
        c.sendall(b"\0" * 100000)
        c.settimeout(10)
        answers.append(c.recv(4096))
        c.close()
    check(answers[2].startswith(b"HTTP/1.1 413") and b"in flight" in answers[2],
          "the third upload in flight: %r" % answers[2][:200])
    check(all(a.startswith(b"HTTP/1.1 400") for a in answers[:2]),
          "the first two were read (and refused as malformed): %r" % answers)
    check(s.healthy(), "healthy at the end")
    print("ok")
finally:
    if s:
        s.close()
