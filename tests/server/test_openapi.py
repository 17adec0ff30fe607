# SPDX-License-Identifier: MIT
# docs/openapi.yaml documents exactly the server's routes: the paths and methods under `paths:`
# (read with a small indentation-based reader, no YAML library) equal `dip serve --routes`.
import os
import re
import subprocess

from srvutil import DIP, SRC, check

out = subprocess.run([DIP, "serve", "--routes"], check=True, stdout=subprocess.PIPE)
routes = set(tuple(line.split(" ", 1)) for line in out.stdout.decode().splitlines() if line)
check(len(routes) >= 10, "routes: %r" % routes)

doc = set()
with open(os.path.join(SRC, "docs", "openapi.yaml")) as f:
    lines = f.read().splitlines()
in_paths, path = False, None
for line in lines:
    if re.match(r"^paths:\s*$", line):
        in_paths = True
        continue
    if in_paths and re.match(r"^\S", line):
        in_paths = False
    if not in_paths:
        continue
    m = re.match(r"^  (/\S*):\s*$", line)
    if m:
        path = m.group(1)
        continue
    m = re.match(r"^    (get|put|post|delete|patch|head|options):\s*$", line)
    if m and path:
        doc.add((m.group(1).upper(), path))

check(doc, "no paths read from openapi.yaml")
missing = routes - doc
extra = doc - routes
check(not missing, "routes missing from docs/openapi.yaml: %r" % sorted(missing))
check(not extra, "docs/openapi.yaml documents routes the server lacks: %r" % sorted(extra))
print("ok: %d routes" % len(routes))
