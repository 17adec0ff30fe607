# SPDX-License-Identifier: MIT
# The v1 promise: docs/openapi.yaml makes no breaking change against the released copy
# (docs/openapi-v1.released.yaml), and the check (tools/openapi-compat.py) fails on deliberately
# broken copies, each for the reason it was broken, while an additive change passes.
import copy
import os
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(SRC, "tools", "openapi-compat.py")
RELEASED = os.path.join(SRC, "docs", "openapi-v1.released.yaml")
CURRENT = os.path.join(SRC, "docs", "openapi.yaml")


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


def compat(new_path):
    r = subprocess.run([sys.executable, TOOL, RELEASED, new_path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode()


rc, out = compat(CURRENT)
print(out, end="")
if rc != 0:
    fail("docs/openapi.yaml breaks the released v1 contract:\n" + out)

with open(RELEASED) as f:
    base = yaml.safe_load(f)
S = base["components"]["schemas"]


def edit_remove_path(d):
    del d["paths"]["/api/v1/whoami"]


def edit_remove_param(d):
    ps = d["paths"]["/api/v1/jobs/{id}"]["get"]["parameters"]
    d["paths"]["/api/v1/jobs/{id}"]["get"]["parameters"] = [
        p for p in ps if p.get("name") != "items_offset"]


def edit_remove_field(d):
    del d["components"]["schemas"]["Job"]["properties"]["owner"]
    d["components"]["schemas"]["Job"]["required"].remove("owner")


def edit_change_type(d):
    d["components"]["schemas"]["Progress"]["properties"]["percent"]["type"] = "string"


def edit_nullable(d):
    d["components"]["schemas"]["Job"]["properties"]["created"]["type"] = ["number", "null"]


def edit_new_required_request_field(d):
    d["components"]["schemas"]["JobSubmission"]["required"].append("pipeline")


def edit_new_required_param(d):
    d["paths"]["/api/v1/process"]["post"]["parameters"].append(
        {"name": "token2", "in": "query", "required": True, "schema": {"type": "string"}})


def edit_remove_status(d):
    del d["paths"]["/api/v1/jobs"]["post"]["responses"]["429"]


def edit_rename_operation(d):
    d["paths"]["/api/v1/jobs"]["post"]["operationId"] = "submitJob"


def edit_optional_field_dropped_from_required(d):
    d["components"]["schemas"]["Item"]["required"].remove("result_url")


broken = [
    (edit_remove_path, "path removed"),
    (edit_remove_param, "parameter query 'items_offset' removed"),
    (edit_remove_field, "response field 'owner' removed"),
    (edit_change_type, "type ['number'] became ['string']"),
    (edit_nullable, "type ['number'] became ['null', 'number']"),
    (edit_new_required_request_field, "new required request fields: ['pipeline']"),
    (edit_new_required_param, "parameter query 'token2' is now required"),
    (edit_remove_status, "response 429 removed"),
    (edit_rename_operation, "operationId 'createJob' renamed 'submitJob'"),
    (edit_optional_field_dropped_from_required, "no longer always sent: ['result_url']"),
]


def additive(d):
    d["paths"]["/api/v1/new"] = {"get": {"operationId": "getNew", "tags": ["meta"],
                                         "security": [], "responses": {"200": {
                                             "description": "new"}}}}
    d["components"]["schemas"]["Job"]["properties"]["priority"] = {"type": "integer"}
    d["components"]["schemas"]["JobState"]["enum"].append("paused")
    d["paths"]["/api/v1/jobs"]["get"]["parameters"].append(
        {"name": "state", "in": "query", "schema": {"type": "string"}})


with tempfile.TemporaryDirectory(prefix="dip-openapi-compat-") as tmp:
    for fn, expect in broken + [(additive, None)]:
        d = copy.deepcopy(base)
        fn(d)
        path = os.path.join(tmp, fn.__name__ + ".yaml")
        with open(path, "w") as f:
            yaml.safe_dump(d, f, sort_keys=False)
        rc, out = compat(path)
        if expect is None:
            if rc != 0:
                fail("an additive change was called breaking:\n" + out)
            print("additive change accepted")
            continue
        if rc == 0:
            fail("%s: the check passed a breaking change (%s)" % (fn.__name__, expect))
        if expect not in out:
            fail("%s: refused, but not for %r:\n%s" % (fn.__name__, expect, out))
        print("%s refused: %s" % (fn.__name__, [l for l in out.splitlines() if expect in l][0]))
print("ok: %d breaking changes refused" % len(broken))
