#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Replaces the generated limits table in README.md (between its BEGIN and END markers) with
stdin, the output of `dip limits --markdown`. Called by `make docs`."""
import re
import sys

path = sys.argv[1]
with open(path) as f:
    text = f.read()
table = sys.stdin.read()
new, n = re.subn(r"(<!-- BEGIN `dip limits --markdown`[^\n]*-->\n).*?(<!-- END `dip limits --markdown` -->)",
                 lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
if n != 1:
    sys.exit("%s: no BEGIN/END `dip limits --markdown` markers" % path)
with open(path, "w") as f:
    f.write(new)
