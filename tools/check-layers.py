#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The layer check of DESIGN.md: no file includes a header of a layer above its own, and only the
layer that owns a third-party library includes that library's headers.

    core <- ops <- plan <- exec <- service <- server;  exec <- cli, service <- cli
    core <- codec <- exec;  core <- crypto <- {store, exec/mpi};  core <- store <- service
    exec/opencl is exec's device backend (below exec); exec/mpi is the cluster executor (above it)

Run: tools/check-layers.py [SOURCE_DIR]. Prints each offending line (file:line: what and why) and
exits 1 when there is one; prints the edges it saw with --edges. CTest runs it (unit/layers)."""
import os
import re
import sys

# What each layer may include (its own headers always), by DESIGN.md's arrows, transitively.
BELOW = {
    "core": set(),
    "ops": {"core"},
    "plan": {"ops", "core"},
    "codec": {"core"},
    "crypto": {"core"},
    # The device backend implements part of exec's interface, so it sees dip/exec.h.
    "exec/opencl": {"exec", "plan", "ops", "core"},
    "exec": {"exec/opencl", "plan", "ops", "codec", "core"},
    "exec/mpi": {"exec", "exec/opencl", "plan", "ops", "codec", "crypto", "store", "core"},
    "store": {"crypto", "core"},
    "service": {"exec", "exec/mpi", "exec/opencl", "plan", "ops", "codec", "crypto", "store",
                "core"},
    "server": {"service", "exec", "exec/mpi", "exec/opencl", "plan", "ops", "codec", "crypto",
               "store", "core"},
    "cli": {"server", "service", "exec", "exec/mpi", "exec/opencl", "plan", "ops", "codec",
            "crypto", "store", "core"},
}
# The public headers, by the layer that implements them. dip.h includes them all (cli only).
PUBLIC = {
    "error.h": "core", "image.h": "core", "limits.h": "core", "pool.h": "core", "version.h": "core",
    "codec.h": "codec", "op.h": "ops", "plan.h": "plan", "pipeline.h": "plan", "exec.h": "exec",
    "crypto.h": "crypto", "store.h": "store", "s3.h": "store", "server.h": "server",
    "dip.h": "cli",
}
# Third-party headers and the only place that may include them.
LIBS = [
    (r"mpi\.h$", lambda f: f.startswith("src/exec/mpi/")),
    (r"CL/", lambda f: f.startswith("src/exec/opencl/")),
    (r"sqlite3\.h$|curl/", lambda f: f.startswith("src/store/")),
    (r"microhttpd\.h$", lambda f: f.startswith("src/server/")),
    (r"nettle/|sodium\.h$|gnutls/", lambda f: f.startswith("src/crypto/")),
    (r"png\.h$|spng\.h$", lambda f: f == "src/codec/png.c"),
    (r"jpeglib\.h$|turbojpeg\.h$", lambda f: f == "src/codec/jpeg.c"),
    (r"webp/", lambda f: f == "src/codec/webp.c"),
    (r"tiffio\.h$|tiff\.h$", lambda f: f == "src/codec/tiff.c"),
    (r"gif_lib\.h$", lambda f: f == "src/codec/gif.c"),
    (r"libdeflate\.h$|isa-l", lambda f: f == "src/codec/deflate.c"),
    # zlib: the deflate module, and png.c for libpng's own CRC-32 (libpng depends on zlib).
    (r"zlib\.h$", lambda f: f in ("src/codec/deflate.c", "src/codec/png.c")),
]


def layer_of(path):
    """The layer of a repository path (src/... or include/dip/...), or None (not layered)."""
    parts = path.split("/")
    if parts[0] == "include" and len(parts) == 3:
        return PUBLIC.get(parts[2])
    if parts[0] != "src" or len(parts) < 3:
        return None
    if parts[1] == "exec" and len(parts) >= 4 and parts[2] in ("mpi", "opencl"):
        return "exec/" + parts[2]
    return parts[1]


def target_of(path, inc, root):
    """The repository path a quoted include names, or None when it is not one of ours."""
    here = os.path.dirname(path)
    for base in (here, "src", "include"):
        cand = os.path.normpath(os.path.join(base, inc))
        if os.path.exists(os.path.join(root, cand)):
            return cand
    return None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    edges, bad = set(), []
    for top in ("src", "include"):
        for d, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if not n.endswith((".c", ".h", ".def")):
                    continue
                path = os.path.relpath(os.path.join(d, n), root)
                me = layer_of(path)
                with open(os.path.join(root, path), errors="replace") as f:
                    lines = f.read().splitlines()
                for no, line in enumerate(lines, 1):
                    m = re.match(r'\s*#\s*include\s*([<"])([^">]+)[">]', line)
                    if not m:
                        continue
                    kind, inc = m.groups()
                    where = "%s:%d: #include %s%s%s" % (path, no, kind, inc,
                                                         '"' if kind == '"' else ">")
                    if kind == "<":
                        for pat, ok in LIBS:
                            if re.search(pat, inc) and not ok(path):
                                bad.append("%s: another layer owns this library (DESIGN.md: "
                                           "only its owner includes it)" % where)
                        continue
                    tgt = target_of(path, inc, root)
                    them = layer_of(tgt) if tgt else None
                    if me is None or them is None or them == me:
                        continue
                    edges.add((me, them))
                    if them not in BELOW.get(me, set()):
                        bad.append("%s: %s includes %s, a layer above or beside it" %
                                   (where, me, them))
    if "--edges" in sys.argv:
        for a, b in sorted(edges):
            print("%s -> %s" % (a, b))
    for b in bad:
        print(b)
    if bad:
        print("check-layers: %d include(s) break DESIGN.md's layers" % len(bad))
        return 1
    print("check-layers: %d layer edges, all point down (DESIGN.md)" % len(edges))
    return 0


if __name__ == "__main__":
    sys.exit(main())
