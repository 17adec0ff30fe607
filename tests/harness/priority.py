# SPDX-License-Identifier: MIT
"""The priority of the tests that assert deadlines of seconds (a worker lost after 2-5 s of
silence, mpirun ending within 10 s of the summary). `make test` runs them one at a time beside
the other tests rather than alone (tests/CMakeLists.txt, dip_test_deadlines): CTest gives them
DIP_TEST_NICE=-10, and raise_priority() lowers the test's nice value by that much, so that the
test, mpirun and every rank it starts (children inherit it) take the cores first when the tests
beside them keep them busy. Needs root (CTest runs them alone otherwise)."""
import os
import sys


def raise_priority():
    n = int(os.environ.get("DIP_TEST_NICE") or 0)
    if n == 0:
        return
    try:
        os.nice(n)
    except PermissionError:
        print("priority: cannot change the nice value by %d (not root): the test runs at the "
              "usual priority" % n, file=sys.stderr)
