# SPDX-License-Identifier: MIT
"""A task that never ends (the test-only hook: a worker's compute thread hangs on an input whose
bytes contain DIP_TEST_HANG, while its heartbeat thread goes on) runs past its deadline
(--task-timeout): its worker is declared lost and the task moves on; after hanging three workers
it fails as poison, and every other input still succeeds with the local executor's bytes."""
import os

from mpiutil import (check, make_images, png_with_text, run_local, run_mpi, same_outputs, tmpdir,
                     worker_table, need_hooks)

need_hooks()
d = tmpdir()
inputs = make_images(os.path.join(d, "in"), 10, 320, 240, seed=11)
stuck = inputs[2]
png_with_text(stuck, "dip-hang-marker")
good = [p for p in inputs if p != stuck]
pipe = "gaussian(size=5) | equalize"
run_local(pipe, good, os.path.join(d, "local") + "/")
out = os.path.join(d, "mpi")
r = run_mpi(5, pipe, inputs, out + "/", extra=("--task-timeout", "2"), timeout=200,
            DIP_TEST_HANG="dip-hang-marker")
text = r.stderr + r.stdout
print(text[-3000:])
check(text.count("over its 2 s deadline") == 3, "expected three deadline losses", text)
check("killed 3 workers" in text and os.path.basename(stuck) in text, "no poison error", text)
check("9 done, 1 failed" in text, "expected 9 done and 1 failed", text)
check(not os.path.exists(os.path.join(out, os.path.basename(stuck))), "the stuck input has output")
bad = same_outputs(os.path.join(d, "local"), out)
check(not bad, "outputs differ: %s" % bad, text)
table = worker_table(text)
check(sum(1 for s, _ in table.values() if s == "LOST") == 3, "expected 3 lost: %s" % table, text)
print("ok (%.1f s)" % r.seconds)
