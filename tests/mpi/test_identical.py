# SPDX-License-Identifier: MIT
"""Outputs under mpirun -np 2, 3 and 5 are byte-identical to the local executor's, for a batch
(whole images shipped as encoded bytes) and for one large image (tiles with halos, statistics
reduced on the coordinator, the global step on rank 0), with pipelines covering every op kind."""
import os

from mpiutil import (PIPELINE, PIPELINE2, check, make_images, run_local, run_mpi, same_outputs,
                     tmpdir)

d = tmpdir()
batch = make_images(os.path.join(d, "in"), 7, 320, 240, seed=3)
big = make_images(os.path.join(d, "big"), 1, 1280, 900, seed=4, prefix="large")
# A "large" image is one over DIP_MPI_TILE_PIXELS (4 MP by default): lowered so the test is fast.
tile_env = {"DIP_MPI_TILE_PIXELS": 1000000}

for pi, pipe in enumerate([PIPELINE, PIPELINE2]):
    lb, ll = os.path.join(d, "lb%d" % pi), os.path.join(d, "ll%d" % pi)
    run_local(pipe, batch, lb + "/")
    run_local(pipe, big, ll + "/")
    for np_ in ((2, 3, 5) if pi == 0 else (3,)):
        mb, ml = os.path.join(d, "mb%d_%d" % (pi, np_)), os.path.join(d, "ml%d_%d" % (pi, np_))
        r = run_mpi(np_, pipe, batch, mb + "/")
        check(r.returncode == 0, "batch -np %d exit %d" % (np_, r.returncode), r.stderr)
        bad = same_outputs(lb, mb)
        check(not bad, "batch -np %d: %s differ from the local run" % (np_, bad), r.stderr)
        r = run_mpi(np_, pipe, big, ml + "/", **tile_env)
        check(r.returncode == 0, "large -np %d exit %d" % (np_, r.returncode), r.stderr)
        check(" rows " in r.stderr, "large -np %d was not split into tiles" % np_, r.stderr)
        bad = same_outputs(ll, ml)
        check(not bad, "large -np %d: %s differ from the local run" % (np_, bad), r.stderr)
        print("pipeline %d, -np %d: batch and large image identical (%.1f s)" %
              (pi, np_, r.seconds))
