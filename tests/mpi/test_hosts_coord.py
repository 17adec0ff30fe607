# SPDX-License-Identifier: MIT
"""Several hosts (network namespaces, one Open MPI daemon per host, see hostnet.py): the
coordinator (rank 0) is SIGKILLed mid-job. `dip mpirun` ends within 10 s with status 7 (the
coordinator died), every output written so far is complete and correct, and a rerun writes the
rest, removing the temporary an interrupted write leaves (NAME.tmp.XXXXXX) but no file that is
not its own."""
import os
import subprocess
import time

from hostnet import run_fault
from mpiutil import DIP, check, same_outputs

rc, d, text, inputs, out = run_fault("coord")
check(rc == 7, "dip mpirun exited %s, expected 7 (the coordinator died)" % rc, text)
done = [n for n in os.listdir(out) if ".tmp." not in n]
check(len(done) < len(inputs), "the job should have been cut short: %d outputs" % len(done), text)
bad = [n for n in done if open(os.path.join(out, n), "rb").read() !=
       open(os.path.join(d, "local", n), "rb").read()]
check(not bad, "outputs written before the kill differ: %s" % bad, text)

# What a coordinator killed mid-write leaves, planted so the rerun meets it for certain, next to
# look-alikes that are not dip's temporaries of this run's outputs.
os.makedirs(out, exist_ok=True)
old = time.time() - 60
stale = os.path.join(out, "img005.png.tmp.Ab3xZ9")
keep = [os.path.join(out, "img005.png.tmp.bak"),         # not mkstemp's 6-character suffix
        os.path.join(out, "other.png.tmp.Qw12er"),       # not an output of this run
        os.path.join(out, "img006.png.tmp.Zz99Yy")]      # a symbolic link
for path in (stale, keep[0], keep[1]):
    open(path, "wb").write(b"partial")
    os.utime(path, (old, old))
os.symlink("/etc/hostname", keep[2])
r = subprocess.run([DIP, "process", "-p", "median(size=7) | gaussian(size=5) | equalize", "-o",
                    out + "/", "--quiet", *inputs], capture_output=True, text=True, timeout=300)
check(r.returncode == 0, "the rerun failed (%d): %s" % (r.returncode, r.stderr))
check(not os.path.exists(stale), "the stale temporary was not removed", r.stderr)
check("removed %s" % stale in r.stderr, "the removal is not reported", r.stderr)
check(all(os.path.lexists(k) for k in keep), "a file that is not dip's was removed", r.stderr)
for k in keep:
    os.unlink(k)
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs after the rerun differ or are missing: %s" % bad, r.stderr)
print("ok")
