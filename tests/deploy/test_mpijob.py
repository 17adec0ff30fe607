# SPDX-License-Identifier: MIT
# deploy/kubernetes/mpijob/mpijob.yaml run the way the MPI Operator runs it, with podman instead
# of a cluster: the `mpi` image; one container per Worker replica running the manifest's worker
# command (sshd as uid 10001 on port 2222), one launcher running the manifest's command and env,
# each with the pod's hostname, a read-only root filesystem, all capabilities dropped, /tmp as
# tmpfs, the ssh key where the operator mounts it (sshAuthMountPath), the host file the operator
# writes (/etc/mpi/hostfile, launcher first with runLauncherAsWorker) and its OMPI_MCA_* env, and
# one shared folder at the manifest's /work, the Secret dip-cluster-key as the kubelet mounts it
# with fsGroup (mode 0440) and the pods' init containers copying it to their memory emptyDir. The
# outputs must be byte-identical to `dip process` on the host, and the traffic sealed. Label container;slow (left out of the ASan pass). Skipped (77) without podman/root.
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import cv2
import numpy as np
import yaml

DIP = os.environ.get("DIP", "dip")
SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = "localhost/dip-mpi:ctest"
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(SRC, "deploy/container/containers.conf"))


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


if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("debootstrap"):
    print("SKIP: needs root, podman and debootstrap (tools/install-deps.sh test)")
    sys.exit(77)

with open(os.path.join(SRC, "deploy/kubernetes/mpijob/mpijob.yaml")) as f:
    job = yaml.safe_load(f)
spec = job["spec"]
name = job["metadata"]["name"]
launcher = spec["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]
worker = spec["mpiReplicaSpecs"]["Worker"]["template"]["spec"]
n_workers = spec["mpiReplicaSpecs"]["Worker"]["replicas"]
slots = spec.get("slotsPerWorker", 1)
ssh_dir = spec["sshAuthMountPath"]
lc, wc = launcher["containers"][0], worker["containers"][0]
uid = "%d:%d" % (launcher["securityContext"]["runAsUser"], launcher["securityContext"]["runAsGroup"])
work = next(m["mountPath"] for m in lc["volumeMounts"] if m["name"] == "work")
check(next(m["mountPath"] for m in wc["volumeMounts"] if m["name"] == "work") == work,
      "launcher and workers mount the shared volume at different paths")
env = {e["name"]: e["value"] for e in lc.get("env", [])}

b = subprocess.run([os.path.join(SRC, "deploy/container/build.sh"), IMAGE, "mpi"], env=ENV,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1500)
if b.returncode != 0:
    fail("mpi image build failed:\n" + b.stdout.decode(errors="replace")[-5000:])

tag = uuid.uuid4().hex[:8]
net, keys = "dip-mpijob-" + tag, "dip-mpijob-keys-" + tag
tmp = tempfile.mkdtemp(prefix="dip-mpijob-test-")
names = []
try:
    # The shared volume: inputs in in/, outputs to out/.
    shared = os.path.join(tmp, "shared")
    os.makedirs(os.path.join(shared, "in"))
    inputs = []
    for i in range(6):
        rng = np.random.RandomState(i)
        img = cv2.GaussianBlur(rng.randint(0, 256, size=(360, 480, 3), dtype=np.uint8), (7, 7), 2)
        cv2.circle(img, (240, 180), 100, (255, 128, 0), -1)
        p = os.path.join(shared, "in", "img%d.png" % i)
        cv2.imwrite(p, img)
        inputs.append(p)
    os.chmod(shared, 0o777)

    # The Secret dip-cluster-key as the kubelet mounts it with fsGroup: group-readable (0440),
    # group fsGroup. Each pod's memory emptyDir (/run/dip) is a folder of the pod's user.
    secret = os.path.join(tmp, "secret-cluster-key")
    os.makedirs(secret)
    subprocess.run([DIP, "key", "create", os.path.join(secret, "cluster.key")], check=True)
    fs_group = launcher["securityContext"]["fsGroup"]
    os.chown(os.path.join(secret, "cluster.key"), 0, fs_group)
    os.chmod(os.path.join(secret, "cluster.key"), 0o440)
    os.chmod(secret, 0o755)
    os.chmod(tmp, 0o755)

    # The operator's Secret with the ssh key, mounted at sshAuthMountPath.
    podman("volume", "create", keys)
    podman("run", "--rm", "--network", "none", "--user", uid, "-v", "%s:%s" % (keys, ssh_dir),
           IMAGE, "sh", "-c", "ssh-keygen -q -t rsa -b 2048 -N '' -f %s/id_rsa && "
           "cp %s/id_rsa.pub %s/authorized_keys" % (ssh_dir, ssh_dir, ssh_dir))

    # The operator's host file: the launcher first (runLauncherAsWorker), then the workers.
    hosts = ["%s-launcher" % name] + ["%s-worker-%d" % (name, i) for i in range(n_workers)]
    etc_mpi = os.path.join(tmp, "etc-mpi")
    os.makedirs(etc_mpi)
    with open(os.path.join(etc_mpi, "hostfile"), "w") as f:
        f.write("%s slots=1\n" % hosts[0])
        for h in hosts[1:]:
            f.write("%s slots=%d\n" % (h, slots))
    os.chmod(etc_mpi, 0o755)

    podman("network", "create", net)
    base = ["--user", uid, "--read-only", "--cap-drop", "ALL", "--security-opt",
            "no-new-privileges"]
    pod = ["--network", net, *base, "--tmpfs", "/tmp:mode=1777",
           "-v", "%s:%s" % (keys, ssh_dir), "-v", "%s:%s" % (shared, work)]

    def pod_volumes(spec, host):
        """The pod's cluster-key volumes as host folders (the Secret, the emptyDir)."""
        out = {}
        for v in spec.get("volumes", []):
            if "secret" in v:
                check(v["secret"]["secretName"] == "dip-cluster-key",
                      "unexpected Secret %s" % v["secret"]["secretName"])
                out[v["name"]] = secret
            elif "emptyDir" in v and v["name"] != "tmp":
                d = os.path.join(tmp, "%s-%s" % (host, v["name"]))
                os.makedirs(d)
                os.chown(d, int(uid.split(":")[0]), fs_group)
                out[v["name"]] = d
        return out

    def mounts(c, vols):
        m = []
        for vm in c.get("volumeMounts", []):
            if vm["name"] in vols:
                m += ["-v", "%s:%s%s" % (vols[vm["name"]], vm["mountPath"],
                                        ":ro" if vm.get("readOnly") else "")]
        return m

    def init(spec, host):
        """Runs the pod's init containers as the kubelet does; the pod's volume mounts."""
        vols = pod_volumes(spec, host)
        for ic in spec.get("initContainers", []):
            podman("run", "--rm", "--network", "none", *base, *mounts(ic, vols), IMAGE,
                   *ic["command"], *ic.get("args", []))
        return vols
    ips = {}
    for h in hosts[1:]:
        vols = init(worker, h)
        podman("run", "-d", "--name", h + "-" + tag, "--hostname", h, *pod, *mounts(wc, vols),
               *sum((["-e", "%s=%s" % (e["name"], e["value"])] for e in wc.get("env", [])), []),
               IMAGE, *wc["command"], *wc.get("args", []))
        names.append(h + "-" + tag)
        ips[h] = podman("inspect", "--format",
                        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                        h + "-" + tag).stdout.decode().strip()
    add_hosts = sum((["--add-host", "%s:%s" % (h, ip)] for h, ip in ips.items()), [])
    operator_env = {"OMPI_MCA_orte_default_hostfile": "/etc/mpi/hostfile",
                    "OMPI_MCA_orte_keep_fqdn_hostnames": "true"}
    envs = sum((["-e", "%s=%s" % kv] for kv in list(env.items()) + list(operator_env.items())),
               [])
    names.append(hosts[0] + "-" + tag)
    vols = init(launcher, hosts[0])
    r = podman("run", "--name", hosts[0] + "-" + tag, "--hostname", hosts[0], "--timeout", "240",
               *pod, *mounts(lc, vols), *add_hosts, *envs, "-v", "%s:/etc/mpi:ro" % etc_mpi,
               IMAGE, *lc["command"], *lc.get("args", []), check_rc=False, timeout=300)
    out = (r.stdout + r.stderr).decode(errors="replace")
    out = "\n".join(l for l in out.splitlines() if "level=error" not in l)
    check(r.returncode == 0, "launcher exited with %d:\n%s" % (r.returncode, out[-4000:]))
    check("%d done, 0 failed" % len(inputs) in out, "no clean summary:\n" + out[-4000:])
    check("LOST" not in out, "a worker was lost:\n" + out[-4000:])
    check("not encrypted" not in out and "no cluster key" not in out,
          "the pods' traffic was not sealed with the cluster key:\n" + out[-4000:])
    check("--cluster-key" in " ".join(lc["command"]), "the launcher does not pass --cluster-key")
    print(out[-1500:])

    ref = os.path.join(tmp, "ref")
    subprocess.run([DIP, "process", "-p", env["DIP_PIPELINE"], "-f", env["DIP_FORMAT"], "-o", ref,
                    "--quiet"] + inputs, check=True, stdout=subprocess.DEVNULL)
    for p in inputs:
        base = os.path.splitext(os.path.basename(p))[0] + "." + env["DIP_FORMAT"]
        with open(os.path.join(shared, "out", base), "rb") as f:
            got = f.read()
        with open(os.path.join(ref, base), "rb") as f:
            want = f.read()
        check(got == want, "%s from the MPIJob differs from dip process on the host" % base)
finally:
    for n in names:
        podman("rm", "-f", "-t", "2", n, check_rc=False)
    podman("network", "rm", "-f", net, check_rc=False)
    podman("volume", "rm", "-f", keys, check_rc=False)
    shutil.rmtree(tmp, ignore_errors=True)
print("PASS")
