# SPDX-License-Identifier: MIT
"""docs/ops.md and README.md's limits table are generated from the operation and limit tables.
docs/ops.md is generated from the operation table (`dip ops --markdown` + docs/ops-seeds.md):
it must match the table that is built, so the docs never drift from the code. Every operation the
seed mapping names must exist and parse. Run `make docs` to regenerate."""
import json
import os
import re
import subprocess

from diputil import Checker  # noqa: E402
from srvutil import Server  # noqa: E402

src = os.environ["DIP_SOURCE_DIR"]
dip = os.environ["DIP"]
ck = Checker()
gen = subprocess.run([dip, "ops", "--markdown"], capture_output=True, text=True).stdout
with open(os.path.join(src, "docs", "ops-seeds.md")) as f:
    seeds = f.read()
with open(os.path.join(src, "docs", "ops.md")) as f:
    doc = f.read()
ck.check(doc == gen + seeds, "docs/ops.md is up to date (run `make docs`)")

# The limits table in README.md is `dip limits --markdown` (DIP_LIMITS_MAP), between its markers.
gen = subprocess.run([dip, "limits", "--markdown"], capture_output=True, text=True, check=True)
with open(os.path.join(src, "README.md")) as f:
    readme = f.read()
m = re.search(r"<!-- BEGIN `dip limits --markdown`[^\n]*-->\n(.*?)<!-- END `dip limits --markdown` -->",
              readme, re.S)
ck.check(m is not None and m.group(1) == gen.stdout,
         "README.md's limits table is `dip limits --markdown` (run `make docs`)")
# The same table as JSON, and GET /api/v1/limits of a server started with one limit changed:
# every limit of the table, with the default or the flag's value.
table = json.loads(subprocess.run([dip, "limits", "--json"], capture_output=True, text=True,
                                  check=True).stdout)["limits"]
srv = Server("--max-pixels", "1234567")
try:
    api = srv.get("/api/v1/limits").json()
finally:
    srv.close()
for lim in table:
    want = 1234567 if lim["name"] == "max_pixels" else lim["default"]
    ck.check(api.get(lim["name"]) == want, "GET /api/v1/limits %s = %r, want %r" %
             (lim["name"], api.get(lim["name"]), want))
for line in gen.stdout.splitlines()[2:]:
    flag = line.split("`")[1]
    r = subprocess.run([dip, "info", flag, "x"], capture_output=True, text=True)
    ck.check("is not an integer" in r.stderr, "%s is parsed by dip info: %s" % (flag, r.stderr))
for pipeline in re.findall(r"\| `([a-z][^`]*)` \|", seeds):
    r = subprocess.run([dip, "process", "-p", pipeline, "-o", "/nonexistent/x.png",
                        "/nonexistent/in.png"], capture_output=True, text=True)
    ck.check("pipeline:" not in r.stderr, "seed mapping '%s' parses: %s" % (pipeline, r.stderr))
ck.done()
