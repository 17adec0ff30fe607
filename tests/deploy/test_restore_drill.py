# SPDX-License-Identifier: MIT
# The restore drill of docs/deploy.md, step by step with the real `dip`: back up while serving
# (`dip backup` + copying the blobs), lose the data folder, restore the copy into an empty folder,
# start on it. Tokens still work, the job finished before the backup is there with the same
# result bytes, the job submitted after the backup is not (the documented loss window).
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import cv2
import numpy as np

DIP = os.environ.get("DIP", "dip")


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Serve:
    def __init__(self, data, log):
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([DIP, "serve", "--listen", "127.0.0.1:0", "--data", data,
                                      "--threads", "2"], stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        check("://" in line, "dip serve did not start: %r" % line)
        self.port = int(line.split("://")[1].split("/")[0].rsplit(":", 1)[1])

    def request(self, method, path, token, body=None, headers=None):
        h = dict(headers or {}, Authorization="Bearer " + token)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def submit(self, token, name, data):
        b = "dipboundary" + uuid.uuid4().hex
        body = (("--%s\r\nContent-Disposition: form-data; name=\"pipeline\"\r\n\r\n"
                 "median(size=5) | equalize\r\n--%s\r\nContent-Disposition: form-data; "
                 "name=\"format\"\r\n\r\npng\r\n--%s\r\nContent-Disposition: form-data; "
                 "name=\"file\"; filename=\"%s\"\r\n\r\n" % (b, b, b, name)).encode() + data +
                ("\r\n--%s--\r\n" % b).encode())
        status, resp = self.request("POST", "/api/v1/jobs", token, body,
                                    {"Content-Type": "multipart/form-data; boundary=" + b})
        check(status == 201, "submit: %d %r" % (status, resp[:300]))
        jid = json.loads(resp)["id"]
        end = time.time() + 120
        while time.time() < end:
            status, resp = self.request("GET", "/api/v1/jobs/" + jid, token)
            job = json.loads(resp)
            if job["state"] in ("done", "failed", "cancelled"):
                check(job["state"] == "done", "job: %r" % job)
                status, result = self.request("GET", job["items"][0]["result_url"], token)
                check(status == 200, "result: %d" % status)
                return jid, result
            time.sleep(0.05)
        fail("job did not finish")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("dip serve did not stop after SIGTERM")
        check(self.proc.returncode == 0, "dip serve exited with %d" % self.proc.returncode)
        self.proc.stdout.close()
        self.log.close()


def image(seed):
    rng = np.random.RandomState(seed)
    img = cv2.GaussianBlur(rng.randint(0, 256, size=(240, 320, 3), dtype=np.uint8), (7, 7), 2)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


tmp = tempfile.mkdtemp(prefix="dip-restore-drill-")
srv = None
try:
    data, backups = os.path.join(tmp, "data"), os.path.join(tmp, "backups")
    log = os.path.join(tmp, "serve.log")
    token = subprocess.run([DIP, "token", "create", "ops", "--admin", "--data", data],
                           check=True, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL).stdout.decode().strip()
    srv = Serve(data, log)
    before_id, before = srv.submit(token, "before.png", image(1))

    # 1. back up while serving: the database, then the blobs.
    os.makedirs(os.path.join(backups, "db"))
    os.makedirs(os.path.join(backups, "blobs"))
    copy = os.path.join(backups, "db", "dip-drill.db")
    subprocess.run([DIP, "backup", copy, "--data", data], check=True, stderr=subprocess.DEVNULL)
    subprocess.run(["cp", "-a", "-n", os.path.join(data, "blobs") + "/.",
                    os.path.join(backups, "blobs") + "/"], check=True)
    after_id, _ = srv.submit(token, "after.png", image(2))

    # 2. the disaster.
    srv.stop()
    srv = None
    shutil.rmtree(data)

    # 3. restore into an empty folder.
    restored = os.path.join(tmp, "restored")
    os.makedirs(restored, mode=0o750)
    shutil.copy2(copy, os.path.join(restored, "dip.db"))
    shutil.copytree(os.path.join(backups, "blobs"), os.path.join(restored, "blobs"),
                    symlinks=True)

    # 4. start on it and check.
    srv = Serve(restored, log)
    status, resp = srv.request("GET", "/api/v1/jobs/" + before_id, token)
    check(status == 200, "the job from before the backup: %d %r" % (status, resp[:300]))
    job = json.loads(resp)
    check(job["state"] == "done", "restored job: %r" % job)
    status, got = srv.request("GET", job["items"][0]["result_url"], token)
    check(status == 200 and got == before, "restored result differs (%d, %d vs %d bytes)"
          % (status, len(got), len(before)))
    status, _ = srv.request("GET", "/api/v1/jobs/" + after_id, token)
    check(status == 404, "the job submitted after the backup: %d, expected 404" % status)
    # The restored service still computes: the same input gives the same bytes again.
    _, again = srv.submit(token, "before.png", image(1))
    check(again == before, "a new job on the restored service gives other bytes")
    srv.stop()
    srv = None
finally:
    if srv:
        srv.proc.kill()
    shutil.rmtree(tmp, ignore_errors=True)
print("PASS")
