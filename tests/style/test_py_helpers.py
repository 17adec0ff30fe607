# SPDX-License-Identifier: MIT
"""The Python tests share one set of helpers, tests/harness (diputil, srvutil, openapi_check,
confutil), which CTest puts on PYTHONPATH: no test script edits sys.path or loads a helper by file
path, and every helper a test imports from another folder lives in tests/harness. (A helper used
by one folder alone, such as tests/mpi/mpiutil.py, sits next to its tests: Python finds it in the
script's own folder.) Checked on the tree, and shown to catch a planted sys.path edit."""
import ast
import os
import sys

src = os.environ["DIP_SOURCE_DIR"]
tests = os.path.join(src, "tests")
harness = set(f[:-3] for f in os.listdir(os.path.join(tests, "harness")) if f.endswith(".py"))
failed = 0


def check(ok, what):
    global failed
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    failed += not ok


def problems(path, text):
    """What breaks the rule in one script: sys.path edits, file-path imports, and imports of a
    module that is neither in the script's folder, nor in tests/harness, nor installed."""
    out = []
    tree = ast.parse(text, path)
    here = set(f[:-3] for f in os.listdir(os.path.dirname(path)) if f.endswith(".py"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            out.append("%s:%d: uses sys.path" % (path, node.lineno))
        if isinstance(node, ast.Attribute) and node.attr in ("spec_from_file_location",
                                                              "SourceFileLoader", "run_path"):
            out.append("%s:%d: loads a module by file path (%s)" % (path, node.lineno, node.attr))
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        for n in names:
            if n in here or n in harness or n in sys.stdlib_module_names:
                continue
            if n in ("numpy", "cv2", "PIL", "yaml", "jsonschema"):
                continue
            out.append("%s:%d: imports %s, which is neither next to it nor in tests/harness"
                       % (path, node.lineno, n))
    return out


found = []
scripts = 0
for root, dirs, files in os.walk(tests):
    dirs[:] = [d for d in dirs if d != "node_modules"]
    for f in files:
        if f.endswith(".py"):
            p = os.path.join(root, f)
            if os.path.dirname(p) == os.path.join(tests, "style") and f == "test_py_helpers.py":
                continue
            with open(p, encoding="utf-8") as fh:
                found += problems(p, fh.read())
            scripts += 1
check(scripts > 50, "%d Python scripts under tests/" % scripts)
check(not found, "no test edits sys.path or imports a helper from another folder\n" +
      "\n".join(found))

# The check catches what it is for: a planted sys.path edit and a planted file-path import.
planted = os.path.join(tests, "golden", "test_point.py")
bad = ("import sys\nsys.path.insert(0, '../server')\nimport srvutil\n"
       "import importlib.util\nimportlib.util.spec_from_file_location('x', 'x.py')\n")
p = problems(planted, bad)
check(len(p) == 2 and any("sys.path" in x for x in p) and any("file path" in x for x in p),
      "planted breaks found: %s" % p)
p = problems(planted, "import mpiutil\n")
check(len(p) == 1 and "mpiutil" in p[0], "an import of another folder's helper found: %s" % p)
sys.exit(1 if failed else 0)
