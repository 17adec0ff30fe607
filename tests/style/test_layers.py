# SPDX-License-Identifier: MIT
"""tools/check-layers.py passes on the tree, and refuses each kind of break planted in a copy:
an include of a layer above (ops including a plan header), a store file including the whole API
(dip/dip.h), and a third-party header outside its owner (<sqlite3.h> in the service)."""
import os
import shutil
import subprocess
import sys
import tempfile

src = os.environ["DIP_SOURCE_DIR"]
tool = os.path.join(src, "tools", "check-layers.py")
failed = 0


def check(ok, what):
    global failed
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    failed += not ok


r = subprocess.run([sys.executable, tool, src], capture_output=True, text=True)
check(r.returncode == 0, "the tree keeps DESIGN.md's layers:\n" + r.stdout + r.stderr)

with tempfile.TemporaryDirectory() as tmp:
    for d in ("src", "include", "tools"):
        shutil.copytree(os.path.join(src, d), os.path.join(tmp, d))
    plants = [
        ("src/ops/blur.c", '#include "dip/plan.h"\n', "ops includes plan"),
        ("src/store/blobs.c", '#include "dip/dip.h"\n', "store includes cli"),
        ("src/service/json.c", "#include <sqlite3.h>\n", "another layer owns this library"),
    ]
    for path, line, expect in plants:
        p = os.path.join(tmp, path)
        with open(p) as f:
            text = f.read()
        with open(p, "w") as f:
            f.write(line + text)
        r = subprocess.run([sys.executable, os.path.join(tmp, "tools", "check-layers.py"), tmp],
                           capture_output=True, text=True)
        check(r.returncode == 1 and expect in r.stdout and path + ":1:" in r.stdout,
              "planted in %s: %s -> %s" % (path, line.strip(), r.stdout.strip().splitlines()[0]))
        with open(p, "w") as f:
            f.write(text)
sys.exit(1 if failed else 0)
