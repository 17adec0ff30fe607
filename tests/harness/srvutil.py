# SPDX-License-Identifier: MIT
# Helpers for the server tests: start a real `dip serve` on a free loopback port with a temporary
# data folder, talk to it with http.client, build multipart bodies, make test images with OpenCV.
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import cv2
import numpy as np

import openapi_check

DIP = os.environ.get("DIP", "dip")
SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def image(w, h, seed=0, channels=3):
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 256, size=(h, w, channels), dtype=np.uint8)
    # Some structure so that filters have edges to work on.
    cv2.circle(img, (w // 2, h // 2), min(w, h) // 3, (255, 128, 0)[:channels], -1)
    return img


def encode(img, ext=".png", quality=90):
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    return buf.tobytes()


def decode(data):
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def multipart(fields, files):
    """fields: [(name, value)], files: [(name, filename, bytes)] -> (content_type, body)."""
    boundary = "dipboundary" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, name, value)).encode())
    for name, filename, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n"
                    % (boundary, name, filename)).encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return "multipart/form-data; boundary=" + boundary, b"".join(out)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Server:
    def __init__(self, *args, data=None, env=None, listen="127.0.0.1:0", tls=None):
        self.tmp = tempfile.mkdtemp(prefix="dip-server-test-")
        self.data = data or os.path.join(self.tmp, "var")
        self.args = list(args)
        self.listen = listen
        self.tls = tls
        self.env = env
        self.proc = None
        self.token = None
        self.start()

    def start(self, port=None):
        listen = self.listen if port is None else "127.0.0.1:%d" % port
        cmd = [DIP, "serve", "--listen", listen, "--data", self.data] + self.args
        if self.tls:
            cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.log = open(os.path.join(self.tmp, "serve.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                     env=self.env)
        line = self.proc.stdout.readline().decode()
        if "://" not in line:
            self.proc.wait(5)
            fail("dip serve did not start: %r, log:\n%s" % (line, self.read_log()))
        self.port = int(line.split("://")[1].split("/")[0].rsplit(":", 1)[1])
        self.banner = line

    def read_log(self):
        try:
            with open(os.path.join(self.tmp, "serve.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def conn(self, timeout=60):
        if self.tls:
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=None, timeout=60):
        h = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()
        openapi(method, path, resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def submit(self, files, pipeline="", fmt="", quality="", token=None, extra=()):
        fields = [("pipeline", pipeline), ("format", fmt)]
        if quality != "":
            fields.append(("quality", str(quality)))
        fields += list(extra)
        ct, body = multipart(fields, [("file", n, d) for n, d in files])
        return self.request("POST", "/api/v1/jobs", body=body,
                            headers={"Content-Type": ct}, token=token)

    def wait(self, job_id, timeout=120, token=None):
        end = time.time() + timeout
        while time.time() < end:
            r = self.get("/api/v1/jobs/" + job_id, token=token)
            check(r.status == 200, "GET job: %d %r" % (r.status, r.body[:300]))
            j = r.json()
            if j["state"] in ("done", "failed", "cancelled"):
                return j
            time.sleep(0.05)
        fail("job %s did not finish in %ds" % (job_id, timeout))

    def healthy(self):
        r = self.get("/healthz")
        return r.status == 200 and r.json()["status"] == "ok"

    def token_create(self, name, admin=False):
        cmd = [DIP, "token", "create", name, "--data", self.data] + (["--admin"] if admin else [])
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return out.stdout.decode().strip()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("dip serve did not stop within 15 s of SIGTERM")
            log = self.read_log()
            if self.proc.returncode != 0 or "Sanitizer" in log or "runtime error" in log:
                fail("dip serve exited with %d after SIGTERM; log:\n%s"
                     % (self.proc.returncode, log[-4000:]))
        if self.proc:
            self.proc.stdout.close()
        self.log.close()

    def close(self, keep=False):
        self.stop()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def sanitized():
    """1 when the dip binary is an ASan/UBSan (-O0 debug) build: timing bounds are relaxed."""
    try:
        with open(DIP, "rb") as f:
            data = f.read()
        return b"__asan_" in data or b"__ubsan_" in data or b"__tsan_" in data
    except OSError:
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def openapi(method, path, resp):
    """Every response a test gets is checked against docs/openapi.yaml (tests/server/
    openapi_check.py): a route or status the document lacks, or a body that does not match the
    schema of its route and status, fails the test."""
    try:
        openapi_check.check_response(method, path, resp.status, resp.header("Content-Type"),
                                     resp.body)
    except AssertionError as e:
        fail("openapi: %s\nbody: %r" % (e, resp.body[:500]))


def sse_events(server, job_id, token=None, timeout=120, sink=None):
    """Reads the event stream to its end; returns [(event, data_json)], also appended to `sink`
    (a list) as each event arrives."""
    c = server.conn(timeout)
    h = {"Accept": "text/event-stream"}
    tok = token if token is not None else server.token
    if tok:
        h["Authorization"] = "Bearer " + tok
    c.request("GET", "/api/v1/jobs/%s/events" % job_id, headers=h)
    r = c.getresponse()
    # The status and Content-Type (and an error's body) against the document; then each event.
    openapi("GET", "/api/v1/jobs/%s/events" % job_id,
            Response(r.status, r.getheaders(), r.read() if r.status != 200 else b""))
    check(r.status == 200, "events: %d" % r.status)
    check(r.getheader("Content-Type").startswith("text/event-stream"), "events content type")
    events = sink if sink is not None else []
    ev, data = None, []
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line.startswith("event:"):
            ev = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and ev is not None:
            events.append((ev, json.loads("\n".join(data))))
            try:
                openapi_check.check_event("/api/v1/jobs/%s/events" % job_id, ev, events[-1][1])
            except AssertionError as e:
                fail("openapi: %s" % e)
            ev, data = None, []
            if events[-1][0] == "end":
                break
    c.close()
    return events
