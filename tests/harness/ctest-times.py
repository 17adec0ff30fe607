# SPDX-License-Identifier: MIT
"""The longest tests of a build folder's last CTest run against their timeouts:
    /usr/bin/python3 tests/harness/ctest-times.py build-ci [N]
Reads Testing/Temporary/LastTest.log (each test's wall time) and `ctest --show-only=json-v1`
(each test's TIMEOUT, or ctest's --timeout 900 of make test where a test has none), and prints
the N (default 15) longest with the share of its timeout each used, and the largest share.
Used to show that no test comes near its timeout on a loaded machine."""
import json
import os
import re
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build-ci"
top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
default_timeout = 900.0

log = os.path.join(build, "Testing", "Temporary", "LastTest.log")
times = {}
name = None
with open(log, errors="replace") as f:
    for line in f:
        m = re.match(r'^\d+/\d+ Test: (.*)$', line.rstrip("\n"))
        if m:
            name = m.group(1)
            continue
        m = re.match(r'^Test time = +([0-9.]+) sec', line)
        if m and name:
            times[name] = float(m.group(1))
            name = None

# Any ctest run, --show-only included, rewrites LastTest.log: put the last run's back.
with open(log, "rb") as f:
    kept = f.read()
try:
    info = json.loads(subprocess.run(["ctest", "--show-only=json-v1"], cwd=build, check=True,
                                     capture_output=True, text=True).stdout)
finally:
    with open(log, "wb") as f:
        f.write(kept)
timeouts = {}
for t in info.get("tests", []):
    to = default_timeout
    for p in t.get("properties", []):
        if p["name"] == "TIMEOUT":
            to = float(p["value"])
    timeouts[t["name"]] = to

rows = sorted(((s, n, timeouts.get(n, default_timeout)) for n, s in times.items()), reverse=True)
print("%-72s %8s %8s %6s" % ("test (%s, %d run)" % (build, len(times)), "time s", "limit s",
                              "share"))
for s, n, to in rows[:top]:
    print("%-72s %8.1f %8.0f %5.0f%%" % (n, s, to, 100.0 * s / to))
worst = max(((s / to, n) for s, n, to in rows), default=(0, ""))
print("largest share of its timeout: %.0f%% (%s)" % (100 * worst[0], worst[1]))
