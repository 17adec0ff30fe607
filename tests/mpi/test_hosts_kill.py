# SPDX-License-Identifier: MIT
"""Several hosts (network namespaces, one Open MPI daemon per host, see hostnet.py), one input
corrupt: mid-job the worker on the third host is SIGKILLed. The job completes with every good
output identical to the local executor's and written once, the corrupt input fails with a clear
error, and `dip mpirun` ends within 10 s of the summary with dip's own status for a corrupt input
(4), where Open MPI 4.1's mpirun alone never exits after a lost rank and exits 0 when it does."""
from hostnet import run_fault
from mpiutil import check

rc, d, text, inputs, out = run_fault("kill", bad_input=True)
good = len(inputs) - 1  # all but broken.png
check("%d done, 1 failed" % good in text,
      "the summary should count %d done and 1 failed" % good, text)
check("broken.png:" in text, "the failed input is not named", text)
check(rc == 4, "dip mpirun exited %s, expected 4 (corrupt input)" % rc, text)
print("ok")
