# SPDX-License-Identifier: MIT
"""Reads `dip bench` CSV rows and prints, per suite and operation, MP/s on the CPU (all threads)
and on the OpenCL device with the host<->device transfers included (dip-opencl: wall time of a
whole dip_run_image) and excluded (dip-opencl-kernels: the device's own kernel time), and the
ratio device/CPU for both. Ops without a kernel have no device rows and are listed at the end."""
import csv
import sys
from collections import defaultdict

rows = defaultdict(dict)
threads = 0
size = ""
with open(sys.argv[1]) as f:
    for r in csv.reader(f):
        if len(r) != 10 or r[0] == "suite":
            continue
        suite, op, impl, t, rate = r[0], r[1], r[2], int(r[3]), float(r[9])
        if impl == "dip":
            if t >= rows[(suite, op)].get("cpu_t", 0):
                rows[(suite, op)]["cpu"] = rate
                rows[(suite, op)]["cpu_t"] = t
                threads = max(threads, t)
            size = r[4]
        elif impl in ("dip-opencl", "dip-opencl-kernels"):
            rows[(suite, op)][impl] = rate


def cell(d, k):
    return "%10.1f" % d[k] if k in d else "%10s" % "-"


def ratio(d, a, b):
    return "%7.2f" % (d[a] / d[b]) if a in d and b in d and d[b] > 0 else "%7s" % "-"


print("MP/s on %s (higher is better): CPU with %d threads; OpenCL with transfers (incl) and "
      "kernels only (excl)" % (size, threads))
print("%-6s %-11s %10s %10s %10s | %7s %7s" %
      ("suite", "op", "cpu", "ocl incl", "ocl excl", "incl/cpu", "excl/cpu"))
cpu_only = []
for (suite, op), d in sorted(rows.items()):
    if "dip-opencl" not in d:
        cpu_only.append("%s/%s" % (suite, op))
    print("%-6s %-11s %s %s %s | %s %s" % (
        suite, op, cell(d, "cpu"), cell(d, "dip-opencl"), cell(d, "dip-opencl-kernels"),
        ratio(d, "dip-opencl", "cpu"), ratio(d, "dip-opencl-kernels", "cpu")))
print("\nOn the CPU only (no kernel): %s" % (", ".join(cpu_only) or "none"))
