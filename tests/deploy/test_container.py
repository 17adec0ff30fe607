# SPDX-License-Identifier: MIT
# The container image as an operator uses it: build it (deploy/container/build.sh; the
# debootstrap base and the layers are cached between runs), check what it holds (non-root,
# no compiler, openmpi-bin, a HEALTHCHECK, under 200 MB), run it with a volume and the default
# command, wait until healthy, submit a job through the API, check the results byte-identical to
# `dip process` on the host, stop it with SIGTERM (it must exit by itself, status 0), start a new
# container on the same volume and find the job and its results unchanged.
# Needs root, podman, runc and debootstrap (tools/deps-extra.txt); skipped (77) without them.
# Label `container;slow`: the ASan pass leaves it out (the image builds its own release dip).
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import cv2
import numpy as np

DIP = os.environ.get("DIP", "dip")
SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = os.environ.get("DIP_TEST_IMAGE", "localhost/dip:ctest")
PIPE = "gaussian(size=5) | canny(low=100, high=200)"
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(SRC, "deploy/container/containers.conf"))


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def podman(*args, check_rc=True, timeout=120):
    r = subprocess.run(["podman"] + list(args), env=ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check_rc and r.returncode != 0:
        fail("podman %s: exit %d\n%s" % (" ".join(args), r.returncode,
                                         r.stderr.decode(errors="replace")[-3000:]))
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, token=None, timeout=30):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def multipart(fields, files):
    boundary = "dipboundary" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, name, value)).encode())
    for filename, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" % (boundary, filename))
                   .encode())
        out += [data, b"\r\n"]
    out.append(("--%s--\r\n" % boundary).encode())
    return "multipart/form-data; boundary=" + boundary, b"".join(out)


def test_images():
    out = []
    for i, (ext, w, h) in enumerate([(".png", 640, 480), (".jpg", 512, 384)]):
        rng = np.random.RandomState(i)
        img = rng.randint(0, 256, size=(h, w, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (9, 9), 3)
        cv2.circle(img, (w // 2, h // 2), min(w, h) // 3, (255, 128, 0), -1)
        ok, buf = cv2.imencode(ext, img)
        assert ok
        out.append(("img%d%s" % (i, ext), buf.tobytes()))
    return out


def wait_healthy(port, name, t0, limit=60):
    """Until /healthz answers 200 and the image's own HEALTHCHECK passes; seconds from t0."""
    end = time.time() + limit
    while time.time() < end:
        try:
            status, body = request(port, "GET", "/healthz", timeout=2)
            if status == 200 and json.loads(body)["status"] == "ok":
                ready = time.time() - t0
                r = podman("healthcheck", "run", name, check_rc=False)
                check(r.returncode == 0, "the image's HEALTHCHECK (dip healthcheck) failed: %r"
                      % (r.stdout + r.stderr))
                return ready
        except (OSError, http.client.HTTPException, ValueError):
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.decode().strip()
        if state not in ("running", "created", "configured"):
            fail("container %s is %s before it became healthy; logs:\n%s"
                 % (name, state, podman("logs", name, check_rc=False).stderr.decode()[-3000:]))
        time.sleep(0.1)
    fail("no 200 from /healthz within %d s" % limit)


def run_container(name, vol, port):
    # Bridge network with the port published on loopback: the image's default command
    # (serve on 0.0.0.0:8080) runs unchanged in its own network namespace.
    t0 = time.time()
    podman("run", "-d", "--name", name, "--network", "bridge", "-p", "127.0.0.1:%d:8080" % port,
           "-v", "%s:/var/lib/dip" % vol, IMAGE)
    return wait_healthy(port, name, t0)


def main():
    if os.geteuid() != 0:
        print("SKIP: podman builds here need root")
        sys.exit(77)
    for tool in ("podman", "runc", "debootstrap"):
        if not shutil.which(tool):
            print("SKIP: %s is missing (tools/install-deps.sh test installs it)" % tool)
            sys.exit(77)
    t_all = time.time()
    figures = {}

    t = time.time()
    b = subprocess.run([os.path.join(SRC, "deploy/container/build.sh"), IMAGE], env=ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1500)
    if b.returncode != 0:
        fail("image build failed:\n" + b.stdout.decode(errors="replace")[-5000:])
    figures["image build (s)"] = time.time() - t
    # The build context is the sources: the test folders' npm packages (255 MB, 29 000 files
    # after make test-deps) stay out, or every rebuild hashes them again (22 CPU s a build with
    # every layer cached, 2.5 s without them).
    r = podman("run", "--rm", "--entrypoint", "sh", "localhost/dip-build:cache", "-c",
               "find /src -name node_modules -o -name 'build-*' | head -n 5")
    check(r.stdout.strip() == b"", "the image's build context holds %r (containerignore)" %
          r.stdout.decode())

    cfg = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    size = cfg["Size"]
    figures["image size (MB)"] = size / 1e6
    check(size < 200e6, "image is %.1f MB, over 200 MB" % (size / 1e6))
    conf = cfg["Config"]
    check(conf.get("User") == "10001:10001", "image runs as %r, not the dip user" %
          conf.get("User"))
    check(conf.get("Entrypoint") == ["dip"] and
          conf.get("Cmd") == ["serve", "--listen", "0.0.0.0:8080", "--data", "/var/lib/dip"],
          "default command: %r %r" % (conf.get("Entrypoint"), conf.get("Cmd")))
    hc = (cfg.get("Healthcheck") or conf.get("Healthcheck") or {}).get("Test")
    check(hc and "healthcheck" in hc, "image has no HEALTHCHECK with dip healthcheck: %r" % hc)
    r = podman("run", "--rm", "--entrypoint", "sh", IMAGE, "-c",
               "id -u; command -v cc gcc c99 make || true; mpirun --version | head -n1; "
               "test -f /usr/share/dip/web/index.html && echo web")
    lines = r.stdout.decode().split("\n")
    check(lines[0] == "10001", "runs as uid %r" % lines[0])
    check("Open MPI" in r.stdout.decode() or "open-mpi" in r.stdout.decode(),
          "no mpirun in the image: %r" % r.stdout)
    check("/cc" not in r.stdout.decode() and "/gcc" not in r.stdout.decode(),
          "a compiler in the runtime image: %r" % r.stdout)
    check("web" in lines, "the web page is not in the image")

    # The reference: the same pipeline through the host's CLI.
    tmp = tempfile.mkdtemp(prefix="dip-container-test-")
    files = test_images()
    ins = []
    for n, d in files:
        p = os.path.join(tmp, n)
        with open(p, "wb") as f:
            f.write(d)
        ins.append(p)
    subprocess.run([DIP, "process", "-p", PIPE, "-o", os.path.join(tmp, "cli"), "--format",
                    "png", "--quiet"] + ins, check=True)
    want = []
    for n, _ in files:
        with open(os.path.join(tmp, "cli", os.path.splitext(n)[0] + ".png"), "rb") as f:
            want.append(f.read())

    tag = uuid.uuid4().hex[:8]
    vol, name1, name2 = "dip-test-" + tag, "dip-test-a-" + tag, "dip-test-b-" + tag
    try:
        podman("volume", "create", vol)
        # Any address other than loopback needs a token: create one in the volume first.
        r = podman("run", "--rm", "-v", "%s:/var/lib/dip" % vol, IMAGE, "token", "create",
                   "tester", "--data", "/var/lib/dip")
        token = r.stdout.decode().strip()
        check(len(token) >= 20, "no token printed: %r" % r.stdout)

        port = free_port()
        figures["podman run to healthy (s)"] = run_container(name1, vol, port)
        status, _ = request(port, "GET", "/api/v1/jobs")
        check(status == 401, "the API answered %d without a token on 0.0.0.0" % status)

        ct, body = multipart([("pipeline", PIPE), ("format", "png")], files)
        status, body = request(port, "POST", "/api/v1/jobs", body=body,
                               headers={"Content-Type": ct}, token=token)
        check(status == 201, "POST /api/v1/jobs: %d %r" % (status, body[:300]))
        jid = json.loads(body)["id"]
        end = time.time() + 120
        while True:
            status, body = request(port, "GET", "/api/v1/jobs/" + jid, token=token)
            job = json.loads(body)
            if job["state"] in ("done", "failed", "cancelled"):
                break
            check(time.time() < end, "job not finished in 120 s: %r" % job)
            time.sleep(0.1)
        check(job["state"] == "done", "job %s: %r" % (job["state"], job))
        for i, it in enumerate(job["items"]):
            status, got = request(port, "GET", it["result_url"], token=token)
            check(status == 200, "result %d: %d" % (i, status))
            check(got == want[i], "result %d differs from dip process on the host (%d vs %d "
                  "bytes)" % (i, len(got), len(want[i])))

        # SIGTERM (the image's STOPSIGNAL): dip serve must exit by itself, well before podman
        # would send SIGKILL, with status 0.
        t = time.time()
        podman("stop", "--time", "25", name1, timeout=60)
        figures["stop after SIGTERM (s)"] = time.time() - t
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name1).stdout.decode().strip()
        logs = podman("logs", name1, check_rc=False)
        check(code == "0", "exit status %s after SIGTERM; log:\n%s"
              % (code, logs.stderr.decode(errors="replace")[-3000:]))
        check(figures["stop after SIGTERM (s)"] < 20, "stopping took %.1f s"
              % figures["stop after SIGTERM (s)"])
        podman("rm", name1)

        # A new container on the same volume: the job and its results are still there.
        port = free_port()
        figures["restart to healthy (s)"] = run_container(name2, vol, port)
        status, body = request(port, "GET", "/api/v1/jobs/" + jid, token=token)
        check(status == 200, "job after restart: %d %r" % (status, body[:300]))
        job2 = json.loads(body)
        check(job2["state"] == "done" and len(job2["items"]) == len(files),
              "job after restart: %r" % job2)
        for i, it in enumerate(job2["items"]):
            status, got = request(port, "GET", it["result_url"], token=token)
            check(status == 200 and got == want[i], "result %d after restart differs" % i)
        podman("stop", "--time", "25", name2, timeout=60)
    finally:
        for n in (name1, name2):
            podman("rm", "-f", n, check_rc=False)
        podman("volume", "rm", "-f", vol, check_rc=False)
        shutil.rmtree(tmp, ignore_errors=True)

    figures["test wall time (s)"] = time.time() - t_all
    for k, v in figures.items():
        print("%-28s %8.1f" % (k, v))
    print("PASS")


main()
