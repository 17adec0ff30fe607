# SPDX-License-Identifier: MIT
"""The cluster key (--cluster-key, DIP_CLUSTER_KEY), on one host, as an operator meets it:
0. a missing or group-readable key file stops dip process and dip serve, even without mpirun;
1. a key file that group or others may read is refused on every rank with a sentence naming it;
2. a worker started with another key is rejected: the job finishes on the other worker with the
   local executor's bytes, and the log names the rank that failed authentication (and both key
   fingerprints, never the keys);
3. spawned workers (--max-workers) seal with the same key, given by DIP_CLUSTER_KEY, and do work;
4. a job without a key on one host prints no warning about traffic in clear;
5. one executor running several sealed jobs (as dip serve does; new keys per job) gives every job
   the local executor's bytes."""
import os
import re
import subprocess

from mpiutil import (DIP, MPIEXEC, check, env, make_images, run_local, run_mpi, same_outputs,
                     tmpdir, worker_table)

d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 12, 480, 360, seed=17)
pipe = "median(size=5) | gaussian(size=5) | equalize"
run_local(pipe, inputs, os.path.join(d, "local") + "/")
key, other, loose = (os.path.join(d, n) for n in ("cluster.key", "other.key", "loose.key"))
for k in (key, other, loose):
    r = subprocess.run([DIP, "key", "create", k], capture_output=True, text=True)
    check(r.returncode == 0, "dip key create failed: %s" % r.stderr)
    check(os.stat(k).st_mode & 0o777 == 0o600, "%s is not mode 0600" % k)
    check(os.path.getsize(k) == 32, "%s does not hold 32 bytes" % k)
os.chmod(loose, 0o640)
key_id = subprocess.run([DIP, "key", "id", key], capture_output=True, text=True).stdout.strip()
other_id = subprocess.run([DIP, "key", "id", other], capture_output=True, text=True).stdout.strip()

# 0. Without mpirun too, a key file that cannot be used stops dip process and dip serve at once.
for args in (["process", "-p", "invert", "-o", os.path.join(d, "x.png"), inputs[0]],
             ["serve", "--listen", "127.0.0.1:0", "--data", os.path.join(d, "var")]):
    for k, why in ((os.path.join(d, "missing.key"), "No such file"), (loose, "too open")):
        r = subprocess.run([DIP, *args, "--cluster-key", k], capture_output=True, text=True,
                           timeout=60)
        check(r.returncode != 0 and ("cluster key: key file %s" % k) in r.stderr and
              why in r.stderr, "dip %s accepted cluster key %s: %d %s"
              % (args[0], k, r.returncode, r.stderr))
print("0. refused without mpirun: missing and group-readable key files")

# 1. A key file readable by the group: refused before the rank joins the job.
# (Without --enable-recovery, so that mpirun reports the ranks' failure in its status.)
r = subprocess.run([MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "3", DIP, "process",
                    "-p", pipe, "-o", os.path.join(d, "loose") + "/", "--cluster-key", loose,
                    *inputs], capture_output=True, text=True, timeout=120, env=env())
text = r.stderr + r.stdout
check(r.returncode != 0, "a group-readable key file was accepted", text)
check("cluster key: key file %s: permissions 0640 are too open" % loose in text,
      "no clear error naming the key file", text)
check(not os.path.exists(os.path.join(d, "loose")) or not os.listdir(os.path.join(d, "loose")),
      "the job ran with a refused key", text)
print("1. refused: " + [l for l in text.splitlines() if "too open" in l][0])

# 2. Rank 2 holds another key (MPMD: the same command, another --cluster-key).
out = os.path.join(d, "wrong")
args = ["process", "-p", pipe, "-o", out + "/", "--log-level", "1"]
cmd = [MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe", "--mca", "btl",
       "self,vader,tcp", "-np", "2", DIP, *args, "--cluster-key", key, *inputs, ":",
       "-np", "1", DIP, *args, "--cluster-key", other, *inputs]
r = subprocess.run(cmd, capture_output=True, text=True, timeout=200,
                   env=env(DIP_MPI_LOST_S=3))
text = r.stderr + r.stdout
print(text[-2500:])
check(r.returncode == 0, "mpirun exited %d" % r.returncode, text)
check(not same_outputs(os.path.join(d, "local"), out), "outputs differ or are missing", text)
m = re.search(r"rank 2 \([^)]*\) lost: failed authentication: it holds another cluster key "
              r"\(key id (\w+), this rank's (\w+)\)", text)
check(m is not None, "the log does not name rank 2 as failing authentication", text)
check((m.group(1), m.group(2)) == (other_id, key_id),
      "fingerprints %s, expected %s and %s" % (m.groups(), other_id, key_id), text)
table = worker_table(text)
check(table.get(2, ("?",))[0] == "LOST" and table[2][1] == 0,
      "rank 2 should be lost without a task: %s" % table, text)
check(table.get(1, ("?", 0))[0] == "alive" and table[1][1] == len(inputs),
      "rank 1 should have done every image: %s" % table, text)
for k in (key, other):
    raw = open(k, "rb").read()
    check(raw.hex() not in text.lower() and raw.hex()[:16] not in text.lower(),
          "key bytes in the log", text)
print("2. rejected: " + m.group(0))

# 3. Spawned workers get the key from DIP_CLUSTER_KEY (set for mpirun, as an operator would).
out = os.path.join(d, "spawn")
r = run_mpi(2, pipe, inputs, out + "/", extra=("--max-workers", "3"),
            DIP_CLUSTER_KEY=key)
text = r.stderr + r.stdout
print(text[-1500:])
check(r.returncode == 0, "mpirun exited %d" % r.returncode, text)
check(text.count("spawned worker") >= 1, "no worker was spawned", text)
table = worker_table(text)
check("failed authentication" not in text and all(s == "alive" for s, _ in table.values()),
      "a worker was rejected or lost", text)
spawned = [w for w in table if w >= 2]
check(spawned and all(table[w][0] == "alive" and table[w][1] > 0 for w in spawned),
      "spawned workers should be alive and have worked: %s" % table, text)
check(not same_outputs(os.path.join(d, "local"), out), "outputs differ or are missing", text)
print("3. spawned workers sealed with DIP_CLUSTER_KEY: %s" % table)

# 4. One host, no key: quiet about encryption.
out = os.path.join(d, "clear")
r = run_mpi(3, pipe, inputs[:4], out + "/")
text = r.stderr + r.stdout
check(r.returncode == 0, "mpirun exited %d" % r.returncode, text)
check("not encrypted" not in text, "a single-host job warned about clear traffic", text)
print("4. single host without a key: no warning")

# 5. One executor, several jobs (as dip serve runs them), sealed: each job gets its own keys
#    (a fresh job nonce per job), spawned workers join, and every job's outputs are the local ones.
out = os.path.join(d, "jobs")
os.makedirs(out)
r = subprocess.run([MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
                    "-np", "2", os.environ["DIP_MPI_JOBS"], pipe, out, "3", "2", *inputs],
                   capture_output=True, text=True, timeout=200, env=env(DIP_CLUSTER_KEY=key))
text = r.stderr + r.stdout
check(r.returncode == 0 and "0 failed" in r.stdout, "driver failed (%d)" % r.returncode, text)
check("failed authentication" not in text and "LOST" not in text, "a worker was rejected", text)
for j in range(3):
    bad = same_outputs(os.path.join(d, "local"), os.path.join(out, str(j)))
    check(not bad, "job %d: outputs differ: %s" % (j, bad), text)
print("5. three sealed jobs on one executor: outputs identical")
print("ok")
