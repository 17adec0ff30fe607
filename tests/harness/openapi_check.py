# SPDX-License-Identifier: MIT
# Every response the server tests receive, checked against docs/openapi.yaml: srvutil calls
# check_response() for each one (and check_event() for each Server-Sent Event). The route and
# status must be documented; a JSON body must match the schema of that route and status, read
# strictly (an object may hold only the properties the document lists, so an undocumented field
# fails too). Uses Debian's python3-yaml and python3-jsonschema. A mismatch fails the test that
# got the response; at exit the count of validated responses is printed (and appended to
# $DIP_BINARY_DIR/openapi-validated.log, one line per test, for a run's total).
import atexit
import copy
import json
import os
import re
import sys
import threading

import jsonschema
import yaml

SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DOC_PATH = os.path.join(SRC, "docs", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

counts = {"validated": 0, "events": 0, "skipped": 0}
_state = {}
# Tests send requests from several threads; the document is loaded once and jsonschema's
# RefResolver keeps a scope stack, so checks take turns.
_lock = threading.RLock()


def load_doc(path=DOC_PATH):
    with open(path) as f:
        return yaml.safe_load(f)


def strict(node, top=False):
    """A copy of a schema tree in which every object schema that lists properties allows no
    others (unless it says otherwise)."""
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out and not top:
            out["additionalProperties"] = False
        if "allOf" in node:
            # The parts of an allOf each list some of the properties: not strict themselves.
            out["allOf"] = [strict(v, top=True) for v in node["allOf"]]
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


def _doc():
    with _lock:
        return _load()


def _load():
    if "doc" not in _state:
        doc = load_doc()
        sdoc = copy.deepcopy(doc)
        sdoc["components"]["schemas"] = strict(sdoc["components"]["schemas"])
        _state["sdoc"] = sdoc
        _state["resolver"] = jsonschema.RefResolver("", sdoc)
        routes = []
        for p in doc["paths"]:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"
            routes.append((p.count("{"), p, re.compile(rx)))
        routes.sort()  # literal paths before templated ones
        _state["routes"] = routes
        _state["doc"] = doc
    return _state["doc"]


def resolve(node):
    doc = _doc()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def validate(instance, schema, what):
    """Raises AssertionError naming `what` when instance does not match schema."""
    _doc()
    v = jsonschema.Draft202012Validator(strict(schema), resolver=_state["resolver"])
    errors = sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise AssertionError("%s does not match docs/openapi.yaml: %s at %s (%d error%s)" % (
            what, e.message[:300], "/".join(str(p) for p in e.absolute_path) or "the top",
            len(errors), "" if len(errors) == 1 else "s"))


def find(path):
    """(template, path item) of the documented path that path matches, or (None, None)."""
    _doc()
    path = path.split("?", 1)[0]
    for _, tpl, rx in _state["routes"]:
        if rx.match(path):
            return tpl, _state["doc"]["paths"][tpl]
    return None, None


def _media(ct):
    return (ct or "").split(";", 1)[0].strip().lower()


def _media_match(declared, ct):
    if declared == ct:
        return True
    if declared.endswith("/*"):
        return ct.startswith(declared[:-1])
    return False


def check_response(method, path, status, content_type, body):
    """Raises AssertionError when the response contradicts the document."""
    with _lock:
        _check_response(method, path, status, content_type, body)


def _check_response(method, path, status, content_type, body):
    doc = _doc()
    ct = _media(content_type)
    is_json = ct == "application/json"
    what = "%s %s -> %d" % (method, path.split("?", 1)[0], status)
    tpl, item = find(path)
    data = None
    if method.upper() == "HEAD":
        counts["skipped"] += 1  # no body; GET of the same path is checked
        return
    if is_json:
        try:
            data = json.loads(body.decode())
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError("%s: a JSON Content-Type with a body that is not JSON: %s"
                                 % (what, e))
    if item is not None and method.lower() not in item:
        # Not an operation (405 on a documented path): any JSON body is an Error.
        if is_json:
            validate(data, {"$ref": "#/components/schemas/Error"}, what)
            counts["validated"] += 1
        else:
            counts["skipped"] += 1
        return
    if item is None:
        # Static files and unknown paths: their errors are JSON Errors too.
        if is_json:
            check(status >= 400, "%s: JSON outside the documented paths" % what)
            validate(data, {"$ref": "#/components/schemas/Error"}, what)
            counts["validated"] += 1
        else:
            counts["skipped"] += 1
        return
    op = item[method.lower()]
    resp = op["responses"].get(str(status))
    if resp is None:
        if not is_json and status >= 400:
            # libmicrohttpd's own answers (431, 505, a broken request line): not dip's.
            counts["skipped"] += 1
            return
        raise AssertionError("%s: status %d is not documented for %s (%s)"
                             % (what, status, tpl, op["operationId"]))
    resp = resolve(resp)
    content = resp.get("content", {})
    if not content:
        check(not body, "%s: a body where the document has none" % what)
        counts["validated"] += 1
        return
    declared = [m for m in content if _media_match(m, ct)]
    if not declared:
        raise AssertionError("%s: Content-Type %r is not one of %s" % (what, content_type,
                                                                      sorted(content)))
    if is_json:
        validate(data, content[declared[0]]["schema"], what)
    counts["validated"] += 1


def check_event(path, event, data):
    """One Server-Sent Event of GET path: its data must match the schema x-sse-events names."""
    with _lock:
        _check_event(path, event, data)


def _check_event(path, event, data):
    tpl, item = find(path)
    if item is None or "get" not in item or "x-sse-events" not in item["get"]:
        raise AssertionError("%s: events from a path without x-sse-events" % path)
    events = item["get"]["x-sse-events"]
    if event not in events:
        raise AssertionError("%s: event %r is not documented (%s)" % (path, event,
                                                                     sorted(events)))
    validate(data, events[event], "event %r of %s" % (event, tpl))
    counts["events"] += 1


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _report():
    if counts["validated"] == 0 and counts["events"] == 0:
        return
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "?"
    print("openapi: %d responses and %d events validated against docs/openapi.yaml "
          "(%d not dip's or not JSON, skipped)" % (counts["validated"], counts["events"],
                                                  counts["skipped"]))
    out = os.environ.get("DIP_BINARY_DIR")
    if out and os.path.isdir(out):
        try:
            with open(os.path.join(out, "openapi-validated.log"), "a") as f:
                f.write("%s %d %d %d\n" % (name, counts["validated"], counts["events"],
                                           counts["skipped"]))
        except OSError:
            pass


atexit.register(_report)
