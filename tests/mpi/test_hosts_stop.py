# SPDX-License-Identifier: MIT
"""Several hosts (network namespaces, one Open MPI daemon per host, see hostnet.py): the worker on
the third host is stopped (SIGSTOP, a hung machine) mid-job. It is declared lost, the job
completes with the local executor's bytes, and `dip mpirun` ends within 10 s of the summary with
status 0."""
from hostnet import run_fault
from mpiutil import check

rc, d, text, inputs, out = run_fault("stop")
check(rc == 0, "dip mpirun exited %s, expected 0" % rc, text)
print("ok")
