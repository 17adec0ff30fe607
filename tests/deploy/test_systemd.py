# SPDX-License-Identifier: MIT
# deploy/systemd/dip.service: `systemd-analyze verify` passes it with nothing on stderr (an
# unknown or misspelt key is only a warning there, with status 0), `systemd-analyze security
# --offline` rates its exposure at most 2.0 of 10 ("OK"; --threshold counts in tenths), and it has the hardening the deployment plan
# promises. systemd checks that ExecStart's binary exists, so the check runs on a copy whose
# /usr/local/bin/dip (where docs/deploy.md installs it) is the dip just built; every other line
# is the committed file's. Broken copies (a misspelt key, a bad Type=, a relative ExecStart, a
# service without ProtectSystem) must fail the same check.
import os
import re
import shutil
import subprocess
import sys
import tempfile

DIP = os.path.abspath(os.environ.get("DIP", "dip"))
SRC = os.environ.get("DIP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(SRC, "deploy/systemd/dip.service")
REQUIRED = [r"^DynamicUser=yes$|^User=\S+$", r"^StateDirectory=dip$", r"^ProtectSystem=strict$",
            r"^NoNewPrivileges=yes$", r"^PrivateTmp=yes$", r"^RestrictAddressFamilies=\S",
            r"^MemoryMax=\S", r"^LimitNOFILE=\d+$", r"^ExecStart=/usr/local/bin/dip serve ",
            r"^KillSignal=SIGTERM$"]

if not shutil.which("systemd-analyze"):
    print("SKIP: systemd-analyze is missing (package systemd, tools/deps-extra.txt)")
    sys.exit(77)


def problems(text, tmp, name="dip.service"):
    """Everything wrong with a unit's text, as a list of strings (empty: good)."""
    out = []
    d = tempfile.mkdtemp(dir=tmp)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text.replace("/usr/local/bin/dip", DIP))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0 or r.stderr.strip():
        out.append("verify: exit %d: %s" % (r.returncode, r.stderr.decode().strip()))
    else:
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                            "--no-pager", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        level = re.search(rb"exposure level for \S+: ([\d.]+)", r.stdout)
        if r.returncode != 0 or not level:
            out.append("security: exit %d, %s" % (r.returncode,
                                                 level.group(0).decode() if level else r.stderr))
        else:
            print("exposure", level.group(1).decode())
    lines = [l.strip() for l in text.splitlines()]
    for pat in REQUIRED:
        if not any(re.search(pat, l) for l in lines):
            out.append("missing %s" % pat)
    return out


tmp = tempfile.mkdtemp(prefix="dip-systemd-test-")
try:
    with open(UNIT) as f:
        unit = f.read()
    bad = problems(unit, tmp)
    if bad:
        print("FAIL: deploy/systemd/dip.service:\n  " + "\n  ".join(bad))
        sys.exit(1)
    print("ok deploy/systemd/dip.service")
    broken = [
        ("misspelt key", "ProtectSystem=strict", "ProtectSytem=strict", "Unknown key"),
        ("bad Type=", "Type=exec", "Type=daemon", "Failed to parse service type"),
        ("relative ExecStart", "ExecStart=/usr/local/bin/dip", "ExecStart=dip-not-installed",
         "verify: exit"),
        ("no ProtectSystem", "ProtectSystem=strict\n", "", "missing ^ProtectSystem"),
        ("exposed", "ProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\nNoNewPrivileges=yes\n"
         "CapabilityBoundingSet=\n", "", "security: exit"),
    ]
    for why, old, new, needle in broken:
        assert old in unit, old
        bad = problems(unit.replace(old, new), tmp)
        if not bad or not any(needle in b for b in bad):
            print("FAIL: broken unit (%s) not rejected for '%s': %r" % (why, needle, bad))
            sys.exit(1)
        print("rejected broken unit (%s): %s" % (why, next(b for b in bad if needle in b)))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print("PASS")
