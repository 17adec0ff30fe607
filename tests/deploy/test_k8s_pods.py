# SPDX-License-Identifier: MIT
# The pods of deploy/kubernetes/ run as the kubelet would run them, with podman and the image:
# the StatefulSet's init container (bootstrap token) and its dip container with the manifest's
# args, $(VAR)s expanded from the ConfigMap, its env, uid/gid, a read-only root filesystem, all
# capabilities dropped, no new privileges, an emptyDir at /tmp and the volume at /var/lib/dip;
# its probes' paths answer 200; the bootstrap token is an admin's; the Ingress's host name is
# accepted (--public-host from the ConfigMap) and a foreign one is not; the backup CronJob's command
# runs beside the live server and leaves a database copy that opens, and the blobs; SIGTERM stops
# the server with status 0 within terminationGracePeriodSeconds. Label container;slow.
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

import yaml

SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = "localhost/dip:ctest"
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(SRC, "deploy/container/containers.conf"))
K8S = os.path.join(SRC, "deploy/kubernetes")


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def podman(*args, check_rc=True, timeout=180):
    r = subprocess.run(["podman"] + list(args), env=ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check_rc and r.returncode != 0:
        fail("podman %s: exit %d\n%s%s" % (" ".join(args[:3]), r.returncode,
                                           r.stdout.decode(errors="replace")[-3000:],
                                           r.stderr.decode(errors="replace")[-3000:]))
    return r


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def get(port, path, token=None, host=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Authorization": "Bearer " + token} if token else {}
    if host:
        h["Host"] = host
    try:
        c.request("GET", path, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def container_flags(pod, c, mounts):
    """podman flags for container c of pod spec `pod`, as the kubelet would set them up."""
    psc, sc = pod["securityContext"], c["securityContext"]
    flags = ["--user", "%d:%d" % (psc["runAsUser"], psc["runAsGroup"])]
    check(psc["runAsNonRoot"] and psc["runAsUser"] != 0, "pod may run as root")
    if sc.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if "ALL" in sc["capabilities"]["drop"]:
        flags += ["--cap-drop", "ALL"]
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    for m in c.get("volumeMounts", []):
        check(m["name"] in mounts, "volume %s of %s not provided by the test" % (m["name"],
                                                                              c["name"]))
        src = mounts[m["name"]]
        flags += ["--tmpfs", m["mountPath"] + ":mode=1777"] if src is None else \
                 ["-v", "%s:%s" % (src, m["mountPath"])]
    for e in c.get("env", []):
        flags += ["-e", "%s=%s" % (e["name"], e["value"])]
    if "command" in c:  # a pod's command replaces the image's ENTRYPOINT
        flags += ["--entrypoint", json.dumps(c["command"])]
    return flags


if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("debootstrap"):
    print("SKIP: needs root, podman and debootstrap (tools/install-deps.sh test)")
    sys.exit(77)

sts = load("statefulset.yaml")[0]
cm = load("configmap.yaml")[0]["data"]
cron = [d for d in load("backup-cronjob.yaml") if d["kind"] == "CronJob"][0]
pod = sts["spec"]["template"]["spec"]
init, main = pod["initContainers"][0], pod["containers"][0]
check(main["envFrom"][0]["configMapRef"]["name"] == load("configmap.yaml")[0]["metadata"]["name"],
      "the StatefulSet reads another ConfigMap")

b = subprocess.run([os.path.join(SRC, "deploy/container/build.sh"), IMAGE], env=ENV,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1500)
if b.returncode != 0:
    fail("image build failed:\n" + b.stdout.decode(errors="replace")[-5000:])

tag = uuid.uuid4().hex[:8]
vol = "dip-k8s-data-" + tag
names = []
tmp = tempfile.mkdtemp(prefix="dip-k8s-pods-test-")
try:
    podman("volume", "create", vol)
    # The init container, twice: the second run must leave the first token alone.
    for _ in range(2):
        podman("run", "--rm", *container_flags(pod, init, {"data": vol}), IMAGE,
               *init.get("args", []))
    r = podman("run", "--rm", "-v", "%s:/var/lib/dip" % vol, "--entrypoint", "sh", IMAGE, "-c",
               "stat -c %a /var/lib/dip/bootstrap-admin-token && "
               "cat /var/lib/dip/bootstrap-admin-token && dip token list --data /var/lib/dip")
    lines = r.stdout.decode().split("\n")
    check(lines[0] == "600", "bootstrap token file mode %s, expected 600" % lines[0])
    token = lines[1].strip()
    check(len(token) >= 20 and sum(1 for l in lines[2:] if l.strip()) == 1,
          "expected one token: %r" % lines)

    # The dip container: args with $(VAR) from the ConfigMap, as the kubelet expands them.
    args = [re.sub(r"\$\((\w+)\)", lambda m: cm[m.group(1)], a) for a in main["args"]]
    check(not any("$(" in a for a in args), "unexpanded args: %r" % args)
    port = main["ports"][0]["containerPort"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        hport = s.getsockname()[1]
    envs = sum((["-e", "%s=%s" % kv] for kv in cm.items()), [])
    name = "dip-k8s-" + tag
    names.append(name)
    t0 = time.time()
    podman("run", "-d", "--name", name, "--network", "bridge",
           "-p", "127.0.0.1:%d:%d" % (hport, port), *envs,
           *container_flags(pod, main, {"data": vol, "tmp": None}), IMAGE, *args)
    probes = {k: main[k]["httpGet"]["path"] for k in ("startupProbe", "livenessProbe",
                                                      "readinessProbe")}
    end = time.time() + 60
    while True:
        try:
            if all(get(hport, p)[0] == 200 for p in probes.values()):
                break
        except (OSError, http.client.HTTPException):
            pass
        check(time.time() < end, "probes %r not 200 within 60 s; logs:\n%s" % (
            probes, podman("logs", name, check_rc=False).stderr.decode()[-3000:]))
        time.sleep(0.1)
    print("probes %s answered 200 %.1f s after podman run" % (sorted(set(probes.values())),
                                                           time.time() - t0))
    status, body = get(hport, "/api/v1/whoami", token)
    check(status == 200 and json.loads(body).get("admin") is True,
          "the bootstrap token is not an admin's: %d %r" % (status, body))
    status, _ = get(hport, "/api/v1/jobs")
    check(status == 401, "the API answered %d without a token" % status)
    # The Ingress's host (ingress.yaml) is the one dip was told (--public-host); others: 421.
    ingress_host = load("ingress.yaml")[0]["spec"]["rules"][0]["host"]
    status, _ = get(hport, "/api/v1/whoami", token, host=ingress_host)
    check(status == 200, "Host %s (the Ingress's) refused: %d" % (ingress_host, status))
    status, _ = get(hport, "/api/v1/whoami", token, host="elsewhere.example.org")
    check(status == 421, "a foreign Host got %d, expected 421" % status)

    # The backup CronJob's command beside the live server.
    bpod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    bc = bpod["containers"][0]
    backups = os.path.join(tmp, "backups")
    os.makedirs(backups, mode=0o777)
    os.chmod(backups, 0o777)
    r = podman("run", "--rm", *container_flags(bpod, bc, {"data": vol, "backups": backups,
                                                          "tmp": None}),
               IMAGE, *bc.get("args", []))
    print(r.stdout.decode().strip())
    dbs = os.listdir(os.path.join(backups, "db"))
    check(len(dbs) == 1 and dbs[0].startswith("dip-"), "backup files: %r" % dbs)
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(backups, "db", dbs[0]), uri=True)
    check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "backup is not sound")
    check(con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0, "backup empty")
    con.close()
    check(os.path.isdir(os.path.join(backups, "blobs")), "no blobs folder in the backup")

    # SIGTERM within the grace period, exit status 0.
    grace = pod["terminationGracePeriodSeconds"]
    t = time.time()
    podman("stop", "--time", str(grace), name, timeout=grace + 30)
    took = time.time() - t
    code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.decode().strip()
    check(code == "0" and took < grace, "stop: exit %s after %.1f s (grace %d s)" % (code, took,
                                                                                  grace))
finally:
    for n in names:
        podman("rm", "-f", n, check_rc=False)
    podman("volume", "rm", "-f", vol, check_rc=False)
    shutil.rmtree(tmp, ignore_errors=True)
print("PASS")
