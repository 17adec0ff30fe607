# SPDX-License-Identifier: MIT
# docs/openapi.yaml is the API's contract. This test checks the document itself (a real YAML
# parser; paths and methods equal `dip serve --routes`; every operation has an operationId, tags,
# security and schemas for its JSON bodies; the OpName enum equals the op table, and every entry
# of `dip ops --json` and of GET /api/v1/ops matches the Op schema), that the server serves the
# same document at /api/v1/openapi.json and the Redoc page at /api/docs, and that the response
# checker every server test goes through (openapi_check.py) refuses responses that contradict
# the document: the checker must be able to fail.
import json
import subprocess

import openapi_check
from srvutil import DIP, Server, check

doc = openapi_check.load_doc()
check(doc["openapi"].startswith("3.1"), "openapi version %r" % doc["openapi"])
json.dumps(doc)  # plain JSON types only (no YAML dates or sets)

# Paths and methods equal the route table.
out = subprocess.run([DIP, "serve", "--routes"], check=True, stdout=subprocess.PIPE)
routes = set(tuple(line.split(" ", 1)) for line in out.stdout.decode().splitlines() if line)
check(len(routes) >= 10, "routes: %r" % routes)
documented = set()
ids = set()
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method not in openapi_check.METHODS:
            continue
        documented.add((method.upper(), path))
        where = "%s %s" % (method.upper(), path)
        check(op.get("operationId"), where + ": no operationId")
        check(op["operationId"] not in ids, where + ": operationId used twice")
        ids.add(op["operationId"])
        check(op.get("tags"), where + ": no tags")
        check("security" in op, where + ": no security of its own")
        check(any(s.startswith("2") for s in op["responses"]), where + ": no success response")
        for status, resp in op["responses"].items():
            resp = openapi_check.resolve(resp)
            for media, body in resp.get("content", {}).items():
                check("schema" in body, "%s %s %s: no schema" % (where, status, media))
                if status[0] in "45":
                    check(body["schema"] == {"$ref": "#/components/schemas/Error"},
                          "%s %s: an error response that is not an Error" % (where, status))
        if method in ("post", "delete"):
            check("403" in op["responses"], where + ": a foreign Origin gets 403, undocumented")
        if op["security"]:
            check("401" in op["responses"], where + ": needs a token but has no 401")
missing = routes - documented
extra = documented - routes
check(not missing, "routes missing from docs/openapi.yaml: %r" % sorted(missing))
check(not extra, "docs/openapi.yaml documents routes the server lacks: %r" % sorted(extra))

# The op catalogue: OpName is generated from the op table; both generators match the Op schema.
out = subprocess.run([DIP, "ops", "--json"], check=True, stdout=subprocess.PIPE)
cli_ops = json.loads(out.stdout)
names = [op["name"] for op in cli_ops["ops"]]
check(doc["components"]["schemas"]["OpName"]["enum"] == names,
      "the OpName enum in docs/openapi.yaml differs from the op table: run `make openapi-ops` "
      "(added: %r, gone: %r)" % (sorted(set(names) - set(doc["components"]["schemas"]["OpName"]
                                                          ["enum"])),
                                 sorted(set(doc["components"]["schemas"]["OpName"]["enum"]) -
                                        set(names))))
openapi_check.validate(cli_ops, {"$ref": "#/components/schemas/OpList"}, "dip ops --json")

# The checker refuses what contradicts the document (else the checks above prove nothing).
job = {"id": "ab12", "state": "done", "pipeline": "invert", "format": "", "quality": 90,
       "created": 1.5, "finished": 2.5, "owner": "alice",
       "progress": {"items_total": 0, "items_done": 0, "items_failed": 0, "tasks_total": 0,
                    "tasks_done": 0, "pixels_total": 0, "pixels_done": 0, "percent": 100.0,
                    "eta_s": None}}
J = "application/json"


def refused(method, path, status, body, ct=J, why=""):
    try:
        openapi_check.check_response(method, path, status, ct, json.dumps(body).encode())
    except AssertionError as e:
        return str(e)
    check(False, "the checker accepted %s %s %d %r (%s)" % (method, path, status, body, why))


openapi_check.check_response("GET", "/api/v1/jobs/ab12", 200, J, json.dumps(job).encode())
openapi_check.counts["validated"] -= 1  # a made-up response: not one the server sent
print("refused:", refused("GET", "/api/v1/jobs/ab12", 200, dict(job, state="bogus"), why="enum"))
print("refused:", refused("GET", "/api/v1/jobs/ab12", 200, dict(job, quality="90"), why="type"))
print("refused:", refused("GET", "/api/v1/jobs/ab12", 200, dict(job, surprise=1),
                          why="an undocumented field"))
print("refused:", refused("GET", "/api/v1/jobs/ab12", 200,
                          {k: v for k, v in job.items() if k != "owner"}, why="a missing field"))
print("refused:", refused("GET", "/api/v1/jobs/ab12", 418, {"error": {"code": "X",
                                                                     "message": "m"}},
                          why="an undocumented status"))
print("refused:", refused("GET", "/api/v1/jobs/ab12", 404, {"error": "no"}, why="a bad Error"))
print("refused:", refused("GET", "/api/v1/whoami", 200, {"name": "a", "admin": 1,
                                                         "auth_required": False}, why="type"))
print("refused:", refused("GET", "/api/v1/jobs/ab12/results/0", 200, {}, ct="text/html",
                          why="a Content-Type the document lacks"))
try:
    openapi_check.check_event("/api/v1/jobs/ab12/events", "progress", job)
    check(False, "an event without items was accepted")
except AssertionError as e:
    print("refused event:", e)

# Served: the same document as JSON, the reference page and its script (no CDN).
s = Server()
try:
    r = s.get("/api/v1/openapi.json")
    check(r.status == 200, "openapi.json: %d" % r.status)
    check(r.json() == doc, "/api/v1/openapi.json differs from docs/openapi.yaml")
    r = s.get("/api/v1/ops")
    check(r.status == 200, "ops: %d" % r.status)
    check([op["name"] for op in r.json()["ops"]] == names, "/api/v1/ops names != dip ops --json")

    # One writer (dip_op_table_json in src/ops/registry.c) for both: the same bytes, so an enum
    # or bool parameter's range (null) and every default agree too.
    check(r.body == out.stdout, "/api/v1/ops and `dip ops --json` differ:\n%r\n%r" %
          (r.body[:300], out.stdout[:300]))
    r = s.get("/api/docs")
    check(r.status == 200 and r.header("Content-Type").startswith("text/html"),
          "/api/docs: %d" % r.status)
    page = r.body.decode()
    check('spec-url="/api/v1/openapi.json"' in page and '/api/docs/redoc.js' in page, page)
    check("http://" not in page and "https://" not in page, "the page loads something remote")
    r = s.get("/")
    check(r.status == 200 and b'href="/api/docs"' in r.body, "the web page does not link /api/docs")
    r = s.get("/api/docs/redoc.js")
    if r.status == 200:
        check(b"Redoc" in r.body and len(r.body) > 100000, "redoc.js is not Redoc's bundle")
        print("redoc.js: %d bytes" % len(r.body))
    else:
        print("note: redoc.js not installed (npm ci in tests/openapi): %d" % r.status)
finally:
    s.close()
print("ok: %d routes, %d operations, %d ops" % (len(routes), len(ids), len(names)))
