# SPDX-License-Identifier: MIT
"""Several hosts (network namespaces, one Open MPI daemon per host through a launch agent, see
hostnet.py): mid-job the third host's link is cut. Its worker is declared lost, its tasks go to
the others, every output is the local executor's bytes and written once, and `dip mpirun` ends
within 10 s of dip's summary with status 0 (every output was written), although mpirun itself
would wait for the unreachable daemon."""
from hostnet import run_fault
from mpiutil import check

rc, d, text, inputs, out = run_fault("cut")
check(rc == 0, "dip mpirun exited %s, expected 0" % rc, text)
print("ok")
