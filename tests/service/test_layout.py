# SPDX-License-Identifier: MIT
# The shape issue 9 asks for, kept: src/service never sees libmicrohttpd, server.c (routing, start
# and stop) stays under 600 lines with one handler file per resource, and job states are named in
# one table (service.h) rather than as string literals in the service or the HTTP layer.
import glob
import os
import re
import sys

src = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
bad = []
for f in glob.glob(os.path.join(src, "src", "service", "*.[ch]")):
    if "microhttpd" in open(f).read():
        bad.append("%s includes libmicrohttpd" % f)
n = sum(1 for _ in open(os.path.join(src, "src", "server", "server.c")))
if n >= 600:
    bad.append("src/server/server.c has %d lines (>= 600)" % n)
for res in ("h-jobs.c", "h-results.c", "h-events.c", "h-process.c", "h-static.c", "h-info.c"):
    if not os.path.exists(os.path.join(src, "src", "server", res)):
        bad.append("no src/server/%s" % res)
literal = re.compile(r'"(queued|running|done|failed|cancelled)"')
for f in glob.glob(os.path.join(src, "src", "s[ae]rv*", "*.[ch]")):
    if f.endswith(os.path.join("service", "service.h")):
        continue
    for i, line in enumerate(open(f), 1):
        if literal.search(line):
            bad.append("%s:%d: a job state as a literal: %s" % (f, i, line.strip()))
for b in bad:
    print("FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
