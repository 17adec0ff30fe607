# SPDX-License-Identifier: MIT
"""A poison input that crashes every worker that decodes it (the test-only hook: a worker aborts
when DIP_TEST_POISON is set and occurs in the input's bytes) fails after taking down three
workers, with a clear error; every other input succeeds with the local executor's bytes."""
import os

from mpiutil import (check, make_images, png_with_text, run_local, run_mpi, same_outputs,
                     tmpdir, worker_table, need_hooks)

need_hooks()
d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 12, 320, 240, seed=7)
poison = inputs[4]
png_with_text(poison, "dip-poison-marker")
pipe = "gaussian(size=5) | equalize"
good = [p for p in inputs if p != poison]
run_local(pipe, good, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
# 4 s of silence before a worker is lost: at 2 s, five sanitizer-built ranks on two cores once
# lost a fourth, healthy worker (the table expects exactly the three the poison killed).
r = run_mpi(5, pipe, inputs, out + "/", timeout=200, DIP_TEST_POISON="dip-poison-marker",
            DIP_MPI_LOST_S=4)
text = r.stderr + r.stdout
print(text[-3000:])
# dip exits non-zero when an input failed; mpirun --enable-recovery (Open MPI 4.1) reports 0
# whenever a rank died, so the status is read from dip's own summary line.
check("11 done, 1 failed" in text, "expected 11 done and 1 failed", text)
name = os.path.basename(poison)
check("poison: input %s killed 3 workers" % poison in text or
      ("poison: input" in text and name in text and "killed 3 workers" in text),
      "no poison error for %s" % name, text)
os.rename(out, out + "-all")
os.makedirs(out)
for p in good:
    base = os.path.basename(p)
    check(os.path.exists(os.path.join(out + "-all", base)), "%s missing" % base, text)
    os.link(os.path.join(out + "-all", base), os.path.join(out, base))
check(not os.path.exists(os.path.join(out + "-all", name)), "the poison input has an output")
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ: %s" % bad, text)
table = worker_table(text)
lost = [w for w, (state, _) in table.items() if state == "LOST"]
check(len(lost) == 3, "expected 3 lost workers, table %s" % table, text)
print("ok: %s failed after 3 workers, %d others identical (%.1f s)" % (name, len(good), r.seconds))
