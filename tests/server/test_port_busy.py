# SPDX-License-Identifier: MIT
# A second `dip serve` on a port another one already listens on must refuse to start with an error
# naming the address, not start quietly and let the kernel split the connections between two
# servers with two different data folders (it did, with SO_REUSEPORT set on the listening socket).
import subprocess
import tempfile

from srvutil import DIP, Server, check

s = None
try:
    s = Server("--quiet")
    addr = "127.0.0.1:%d" % s.port
    with tempfile.TemporaryDirectory() as d:
        try:
            p = subprocess.run([DIP, "serve", "--quiet", "--listen", addr, "--data", d],
                               capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            check(False, "a second server on %s started and kept running" % addr)
    check(p.returncode != 0, "a second server on %s started (exit %d)" % (addr, p.returncode))
    check(addr in p.stderr or str(s.port) in p.stderr,
          "the error names the address: %r" % p.stderr[-300:])
    check(s.get("/healthz").status == 200, "the first server still answers")
    print("ok: %s" % p.stderr.strip().splitlines()[-1])
finally:
    if s:
        s.close()
