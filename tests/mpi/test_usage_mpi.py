# SPDX-License-Identifier: MIT
"""Usage accounting under mpirun: `dip serve` with one worker rank runs a job of three images
(each sent whole to a worker) and then a job of one image (cut into tiles across the ranks), and
the user's CPU seconds on GET /api/v1/usage include the workers' thread CPU clocks (sent back
with each result and tile), not only the coordinator's share: each job's figure comes within
[0.6, 1.5] of what `dip process` spends on the same images and pipeline locally (its CPU time
from getrusage). Without the workers' figures the user would be billed for storing the results
alone (a few hundredths of a second)."""
import json
import os
import resource
import signal
import subprocess
import time
import urllib.request
import uuid

from mpiutil import DIP, MPIEXEC, check, env, make_images, tmpdir

d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 3, 900, 900, seed=5)
# Another image for the tiled job (the first three would come from the result cache).
lone = make_images(os.path.join(d, "in1"), 1, 900, 900, seed=9)
pipe = "bilateral(d=15) | median(size=7)"



def local_cpu(files):
    t = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = t.ru_utime + t.ru_stime
    r = subprocess.run([DIP, "process", "-p", pipe, "-o", os.path.join(d, "local") + "/",
                        "--quiet", *files], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "local run failed: %s" % r.stderr)
    t = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t.ru_utime + t.ru_stime - before


local_batch = local_cpu(inputs)
local_one = local_cpu(lone)

data = os.path.join(d, "data")
os.makedirs(data)
tok = subprocess.run([DIP, "token", "create", "alice", "--data", data], check=True,
                     stdout=subprocess.PIPE, text=True).stdout.strip().split("\n")[-1].strip()
srv = subprocess.Popen([MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2", DIP,
                        "serve", "--listen", "127.0.0.1:0", "--data", data, "--quiet"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env(DIP_MPI_TILE_PIXELS=100000),  # a lone image is tiled
                       start_new_session=True)
try:
    line = srv.stdout.readline().decode()
    check("://" in line, "dip serve under mpirun did not start: %r" % line)
    base = "http://" + line.split("://")[1].split("/")[0]

    def call(method, path, body=None, ctype=None):
        req = urllib.request.Request(base + path, data=body, method=method)
        req.add_header("Authorization", "Bearer " + tok)
        if ctype:
            req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def run_job(files):
        b = "b" + uuid.uuid4().hex
        parts = [("--%s\r\nContent-Disposition: form-data; name=\"pipeline\"\r\n\r\n%s\r\n"
                  % (b, pipe)).encode()]
        for p in files:
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                          "filename=\"%s\"\r\nContent-Type: image/png\r\n\r\n"
                          % (b, os.path.basename(p))).encode())
            parts.append(open(p, "rb").read() + b"\r\n")
        parts.append(("--%s--\r\n" % b).encode())
        job = call("POST", "/api/v1/jobs", b"".join(parts), "multipart/form-data; boundary=" + b)
        end = time.time() + 200
        while time.time() < end:
            j = call("GET", "/api/v1/jobs/" + job["id"])
            if j["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.3)
        check(j["state"] == "done", "job %s: %r" % (j["state"], j))
        return call("GET", "/api/v1/usage")["users"][0]["cpu_seconds"]

    batch = run_job(inputs)
    one = run_job(lone) - batch
    for what, local, cluster in (("three whole images", local_batch, batch),
                                 ("one tiled image", local_one, one)):
        print("%s: local dip process %.3f s CPU; alice's usage under mpirun %.3f s CPU"
              % (what, local, cluster))
        check(0.6 * local <= cluster <= 1.5 * local,
              "%s: usage under mpirun %.3f s is not near the local run's %.3f s"
              % (what, cluster, local))
finally:
    try:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(srv.pid, signal.SIGKILL)
        srv.wait()
print("ok")
