# SPDX-License-Identifier: MIT
"""A lost worker's PID taken by another process: the job's end must not signal it. Runs inside a
new PID namespace (unshare --pid), SIGKILLs worker rank 2 mid-job, and once its PID is free starts
an unrelated `sleep` on that very PID (through /proc/sys/kernel/ns_last_pid). When the job ends,
the sleep must still run: dip signals a lost worker only after verifying (pidfd, start time, boot
id, PID namespace) that the process is that worker. Needs root and unshare; skips (77) else."""
import os
import shutil
import signal
import subprocess
import sys
import time

from mpiutil import (check, fault_job, kill_group, rank_pids, run_local,
                     same_outputs, start_mpi, tmpdir, wait_for, worker_table)

if len(sys.argv) < 2:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("skip: needs root and unshare for a PID namespace")
        sys.exit(77)
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        print("skip: cannot make a PID namespace: %s" % probe.stderr.decode().strip())
        sys.exit(77)
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                        os.path.abspath(__file__), "inner"], timeout=220)
    sys.exit(r.returncode)

# Inside the PID namespace (this process is PID 1's child or PID 1 itself).
d = tmpdir()
# A job that outlasts the fault (mpiutil.fault_job).
inputs, pipe, slow = fault_job(d, 11)
run_local(pipe, inputs, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
log = os.path.join(d, "log")
p = start_mpi(3, pipe, inputs, out + "/", log, DIP_MPI_LOST_S=3, **slow)
sleeper = None
try:
    ranks = rank_pids(p.pid, want=3)
    check(2 in ranks, "rank 2 not found: %s" % ranks)
    check(wait_for(lambda: os.path.isdir(out) and len(os.listdir(out)) >= 2, 60),
          "no output appeared", open(log).read())
    victim = ranks[2]
    os.kill(victim, signal.SIGKILL)
    check(wait_for(lambda: not os.path.exists("/proc/%d" % victim), 20),
          "the killed worker was not reaped")
    for _ in range(500):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(victim - 1))
        s = subprocess.Popen(["sleep", "1000"])
        if s.pid == victim:
            sleeper = s
            break
        s.kill()
        s.wait()
    check(sleeper is not None, "could not start a process on PID %d" % victim)
    print("sleep runs on the lost worker's PID %d" % victim)
    rc = p.wait(timeout=150)
    time.sleep(0.5)
    alive = sleeper.poll() is None
finally:
    kill_group(p)
    if sleeper is not None:
        sleeper.kill()
        sleeper.wait()
text = open(log).read()
print(text[-2000:])
check(rc == 0, "mpirun exited %s" % rc, text)
check(worker_table(text).get(2, ("?",))[0] == "LOST", "rank 2 not listed as lost", text)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ or are missing: %s" % bad, text)
check(alive, "the process that took the lost worker's PID was killed at the job's end", text)
print("ok: the unrelated process on the reused PID survived")
