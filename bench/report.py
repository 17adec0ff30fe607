# SPDX-License-Identifier: MIT
"""Reads the benchmark CSV and prints, per suite and operation, MP/s for dip, OpenCV and libvips
at one thread and all threads, and the ratios dip/OpenCV and dip/libvips.
Usage: report.py RESULTS.csv [median|min]   rates from the median run (default) or the fastest
run of each (steadier on a loaded machine: the run least disturbed by other processes)."""
import csv
import sys
from collections import defaultdict

stat = sys.argv[2] if len(sys.argv) > 2 else "median"

rows = defaultdict(dict)
maxthreads = defaultdict(int)
with open(sys.argv[1]) as f:
    for r in csv.reader(f):
        if len(r) != 10 or r[0] == "suite":
            continue
        suite, op, impl, threads, rate = r[0], r[1], r[2], int(r[3]), float(r[9])
        if stat == "min":
            w, h = (int(v) for v in r[4].split("x"))
            rate = w * h / 1e6 / float(r[7])
        key = (suite, op)
        t = "1" if threads == 1 else "N"
        rows[key][(impl, t)] = rate
        maxthreads[impl] = max(maxthreads[impl], threads)


def cell(d, k):
    return "%9.1f" % d[k] if k in d else "%9s" % "-"


def ratio(d, a, b):
    return "%6.2f" % (d[a] / d[b]) if a in d and b in d and d[b] > 0 else "%6s" % "-"


print("MP/s of the %s run (higher is better); 1 = one thread, N = all threads (dip %d, "
      "OpenCV %d, vips %d)" % (stat, maxthreads["dip"], maxthreads["opencv"], maxthreads["vips"]))
print("%-6s %-11s %9s %9s %9s %9s %9s %9s | %6s %6s %6s" %
      ("suite", "op", "dip 1", "dip N", "cv 1", "cv N", "vips 1", "vips N",
       "dip/cv1", "dip/cvN", "dip/vp1"))
short = []
for (suite, op), d in sorted(rows.items()):
    if ("dip", "1") not in d:
        continue
    print("%-6s %-11s %s %s %s %s %s %s | %s %s %s" % (
        suite, op, cell(d, ("dip", "1")), cell(d, ("dip", "N")), cell(d, ("opencv", "1")),
        cell(d, ("opencv", "N")), cell(d, ("vips", "1")), cell(d, ("vips", "N")),
        ratio(d, ("dip", "1"), ("opencv", "1")), ratio(d, ("dip", "N"), ("opencv", "N")),
        ratio(d, ("dip", "1"), ("vips", "1"))))
    if ("opencv", "1") in d and d[("dip", "1")] < 1.25 * d[("opencv", "1")]:
        short.append("%s/%s" % (suite, op))
print("\nBelow the 1.25x single-thread target vs OpenCV: %s" % (", ".join(short) or "none"))
