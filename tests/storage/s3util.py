# SPDX-License-Identifier: MIT
# Helpers for the object storage tests: start a real S3-compatible server (s3rver from npm, in
# tests/storage/node_modules) on a free loopback port with a temporary folder, a loopback proxy in
# front of it that records every request and can fail chosen ones with a 503 in the middle of the
# transfer, and the environment dip reads its endpoint and credentials from. Nothing here talks
# to an address other than 127.0.0.1.
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from priority import raise_priority

raise_priority()

HERE = os.path.dirname(os.path.abspath(__file__))
DIP = os.environ.get("DIP", "dip")
S3RVER = os.path.join(HERE, "node_modules", ".bin", "s3rver")


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def need_s3rver():
    """Exit 77 (skipped) when node or s3rver is missing; `make test-deps` installs s3rver."""
    if shutil.which("node") is None:
        print("SKIP: node not found (tools/deps-extra.txt lists nodejs)")
        sys.exit(77)
    if not os.path.exists(S3RVER):
        # As tests/e2e does: install from the lock file when the folder is missing.
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not os.path.exists(S3RVER):
        print("SKIP: s3rver not installed (make test-deps)")
        sys.exit(77)


class S3rver:
    """A real s3rver on 127.0.0.1 with buckets `buckets`, data in a temporary folder."""

    def __init__(self, buckets=("bkt",)):
        need_s3rver()
        self.dir = tempfile.mkdtemp(prefix="dip-s3rver-")
        self.port = free_port()
        args = [S3RVER, "-d", self.dir, "-a", "127.0.0.1", "-p", str(self.port), "--silent"]
        for b in buckets:
            args += ["--configure-bucket", b]
        self.log = open(os.path.join(self.dir, "s3rver.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    fail("s3rver exited: " + open(os.path.join(self.dir, "s3rver.log")).read())
                time.sleep(0.2)
        else:
            fail("s3rver did not start")
        self.url = "http://127.0.0.1:%d" % self.port

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def env(endpoint, **extra):
    e = dict(os.environ)
    for k in ("AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "DIP_S3_ADDRESSING",
              "DIP_S3_CONNECT_TO", "DIP_S3_FIXED_DATE", "DIP_S3_MAX_ATTEMPTS"):
        e.pop(k, None)
    e.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "S3RVER",
              "AWS_SECRET_ACCESS_KEY": "S3RVER", "AWS_REGION": "us-east-1"})
    e.update(extra)
    return e


def dip(args, env_, timeout=120, check_rc=None):
    p = subprocess.run([DIP] + args, env=env_, capture_output=True, text=True, timeout=timeout)
    if check_rc is not None and p.returncode != check_rc:
        fail("dip %s: exit %d, want %d\nstdout: %s\nstderr: %s"
             % (" ".join(args), p.returncode, check_rc, p.stdout, p.stderr))
    return p


class Proxy:
    """A loopback HTTP proxy in front of `target_port`. Records (method, path, headers) of every
    request.
    `fail_when(method, path)` returning True makes that request fail: the proxy reads part of
    its body, answers 503 SlowDown and closes the connection (a failure mid-transfer)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.log = []
        self.failed = []
        self.fail_when = lambda method, path: False
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                with proxy.lock:
                    proxy.log.append((self.command, self.path, dict(self.headers.items())))
                    inject = proxy.fail_when(self.command, self.path)
                    if inject:
                        proxy.failed.append((self.command, self.path))
                if inject:
                    self.rfile.read(min(n, 65536))  # part of the body, then the failure
                    body = (b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
                            b"<Message>injected by the test proxy</Message></Error>")
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                body = self.rfile.read(n) if n else None
                conn = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "transfer-encoding")}
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                else:
                    self.send_header("Content-Length", r.getheader("Content-Length") or "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
