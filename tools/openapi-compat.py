#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# openapi-compat.py RELEASED.yaml CURRENT.yaml: exits 1 listing each breaking change of CURRENT
# against RELEASED, the v1 promise (docs/api.md, "Stability"): within v1 a change is additive.
# Breaking: a removed path, operation, parameter, response status, media type, response field or
# schema; a changed type (or a narrowed one: fewer types, a nullable field made non-null is fine,
# the reverse is not); a response field no longer required; a new required parameter or request
# field; an enum value removed from a request; a request made stricter (min/max).
# Each schema pair is compared where it is used, so a $ref renamed keeps its checks.
import sys

import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class Cmp:
    def __init__(self, old, new):
        self.old, self.new = old, new
        self.problems = []
        self.seen = set()

    def res(self, doc, node):
        while isinstance(node, dict) and "$ref" in node:
            cur = doc
            for part in node["$ref"][2:].split("/"):
                cur = cur[part]
            node = cur
        return node

    def bad(self, where, msg):
        self.problems.append("%s: %s" % (where, msg))

    @staticmethod
    def types(s):
        t = s.get("type")
        if t is None:
            return None
        t = set(t) if isinstance(t, list) else {t}
        if s.get("nullable"):
            t.add("null")
        if "integer" in t:
            t.discard("integer")
            t.add("integer")
        return t

    def schema(self, where, o, n, direction):
        """direction 'out': the server sends it (responses); 'in': the client sends it."""
        key = (where, id(o), id(n), direction)
        if key in self.seen:
            return
        self.seen.add(key)
        o, n = self.res(self.old, o), self.res(self.new, n)
        if not isinstance(o, dict) or not isinstance(n, dict):
            return
        ot, nt = self.types(o), self.types(n)
        if ot is not None and nt is not None:
            # Responses may narrow (fewer types) but not widen; requests may widen, not narrow.
            widen = nt - ot - ({"number"} if "integer" in ot else set())
            narrow = ot - nt - ({"integer"} if "number" in nt else set())
            if direction == "out" and widen:
                self.bad(where, "type %s became %s" % (sorted(ot), sorted(nt)))
            if direction == "in" and narrow:
                self.bad(where, "type %s became %s" % (sorted(ot), sorted(nt)))
        elif ot != nt and (ot is None) != (nt is None) and ot is not None:
            self.bad(where, "type %s removed" % sorted(ot))
        if "enum" in o and "enum" in n:
            if direction == "in" and set(o["enum"]) - set(n["enum"]):
                self.bad(where, "enum values removed: %s" % sorted(set(o["enum"]) -
                                                                   set(n["enum"])))
        elif "enum" in n and "enum" not in o and direction == "in":
            self.bad(where, "a request value restricted to an enum")
        if direction == "in":
            for k, tighter in (("minimum", lambda a, b: b > a), ("maximum", lambda a, b: b < a),
                               ("maxLength", lambda a, b: b < a)):
                if k in n and (k not in o or tighter(o[k], n[k])):
                    self.bad(where, "%s made stricter (%s -> %s)" % (k, o.get(k), n[k]))
        oreq, nreq = set(o.get("required", [])), set(n.get("required", []))
        if direction == "out" and oreq - nreq:
            self.bad(where, "response fields no longer always sent: %s" % sorted(oreq - nreq))
        if direction == "in" and nreq - oreq:
            self.bad(where, "new required request fields: %s" % sorted(nreq - oreq))
        op, np_ = o.get("properties", {}), n.get("properties", {})
        for name, sub in op.items():
            if name not in np_:
                if direction == "out":
                    self.bad(where, "response field %r removed" % name)
                continue
            self.schema("%s.%s" % (where, name), sub, np_[name], direction)
        if "items" in o and "items" in n:
            self.schema(where + "[]", o["items"], n["items"], direction)
        for comb in ("allOf", "oneOf", "anyOf"):
            ol, nl = o.get(comb, []), n.get(comb, [])
            if len(nl) < len(ol) and comb != "allOf" and direction == "out":
                pass  # fewer alternatives sent: fine
            for i, (a, b) in enumerate(zip(ol, nl)):
                self.schema("%s.%s[%d]" % (where, comb, i), a, b, direction)
            if comb == "oneOf" and direction == "in" and len(nl) < len(ol):
                self.bad(where, "request alternatives removed")

    def params(self, where, oitem, oop, nitem, nop):
        def collect(doc, item, op):
            out = {}
            for p in item.get("parameters", []) + op.get("parameters", []):
                p = self.res(doc, p)
                out[(p["in"], p["name"])] = p
            return out
        op_, np_ = collect(self.old, oitem, oop), collect(self.new, nitem, nop)
        for k, p in op_.items():
            if k not in np_:
                self.bad(where, "parameter %s %r removed" % k)
                continue
            self.schema("%s param %s" % (where, k[1]), p.get("schema", {}),
                        np_[k].get("schema", {}), "in")
        for k, p in np_.items():
            if p.get("required") and (k not in op_ or not op_[k].get("required")):
                self.bad(where, "parameter %s %r is now required" % k)

    def run(self):
        for path, oitem in self.old["paths"].items():
            nitem = self.new["paths"].get(path)
            if nitem is None:
                self.bad(path, "path removed")
                continue
            for m in METHODS:
                if m not in oitem:
                    continue
                where = "%s %s" % (m.upper(), path)
                if m not in nitem:
                    self.bad(where, "operation removed")
                    continue
                oop, nop = oitem[m], nitem[m]
                if oop.get("operationId") != nop.get("operationId"):
                    self.bad(where, "operationId %r renamed %r (generated clients break)"
                             % (oop.get("operationId"), nop.get("operationId")))
                self.params(where, oitem, oop, nitem, nop)
                orb = self.res(self.old, oop.get("requestBody", {}))
                nrb = self.res(self.new, nop.get("requestBody", {}))
                if nrb.get("required") and not orb.get("required"):
                    self.bad(where, "request body now required")
                for mt, body in orb.get("content", {}).items():
                    if mt not in nrb.get("content", {}):
                        self.bad(where, "request media type %s removed" % mt)
                        continue
                    self.schema("%s request" % where, body.get("schema", {}),
                                nrb["content"][mt].get("schema", {}), "in")
                for status, oresp in oop.get("responses", {}).items():
                    nresp = nop.get("responses", {}).get(status)
                    if nresp is None:
                        self.bad(where, "response %s removed" % status)
                        continue
                    oresp, nresp = self.res(self.old, oresp), self.res(self.new, nresp)
                    for mt, body in oresp.get("content", {}).items():
                        if mt not in nresp.get("content", {}):
                            self.bad(where, "response %s media type %s removed" % (status, mt))
                            continue
                        self.schema("%s %s" % (where, status), body.get("schema", {}),
                                    nresp["content"][mt].get("schema", {}), "out")
                oev, nev = oop.get("x-sse-events", {}), nop.get("x-sse-events", {})
                for ev, s in oev.items():
                    if ev not in nev:
                        self.bad(where, "event %r removed" % ev)
                    else:
                        self.schema("%s event %s" % (where, ev), s, nev[ev], "out")
        return self.problems


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: openapi-compat.py RELEASED.yaml CURRENT.yaml")
    with open(argv[1]) as f:
        old = yaml.safe_load(f)
    with open(argv[2]) as f:
        new = yaml.safe_load(f)
    problems = Cmp(old, new).run()
    for p in problems:
        print("breaking:", p)
    if problems:
        print("%s breaks %s in %d place%s; within v1 changes must be additive (docs/api.md)"
              % (argv[2], argv[1], len(problems), "" if len(problems) == 1 else "s"))
        return 1
    print("ok: %s is compatible with %s" % (argv[2], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
