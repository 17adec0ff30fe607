# SPDX-License-Identifier: MIT
# `dip healthcheck [URL]`, the container image's HEALTHCHECK: exit 0 when a running dip serve
# answers 2xx, 1 for another status, a refused connection or a server that never answers
# (within --timeout), 2 for a URL it cannot use.
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

DIP = os.environ.get("DIP", "dip")


def check(cond, msg):
    if not cond:
        print("FAIL:", msg, file=sys.stderr)
        sys.exit(1)


def hc(*args):
    r = subprocess.run([DIP, "healthcheck"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode()


tmp = tempfile.mkdtemp(prefix="dip-healthcheck-test-")
srv = subprocess.Popen([DIP, "serve", "--listen", "127.0.0.1:0", "--data", tmp + "/var"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
try:
    line = srv.stdout.readline().decode()
    check("://" in line, "dip serve did not start: %r" % line)
    port = int(line.split("://")[1].split("/")[0].rsplit(":", 1)[1])
    base = "http://127.0.0.1:%d" % port

    rc, out = hc(base + "/healthz")
    check(rc == 0 and ": 200" in out, "healthy server: %d %r" % (rc, out))
    rc, out = hc("http://localhost:%d/healthz" % port, "--timeout", "5")
    check(rc == 0, "by host name: %d %r" % (rc, out))
    rc, out = hc(base + "/no-such-page")
    check(rc == 1 and "status 404" in out, "404: %d %r" % (rc, out))

    # Nothing listening: refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    rc, out = hc("http://127.0.0.1:%d/healthz" % dead)
    check(rc == 1 and "cannot connect" in out, "refused: %d %r" % (rc, out))

    # A server that accepts and never answers: the probe gives up after --timeout.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        t0 = time.time()
        rc, out = hc("http://127.0.0.1:%d/healthz" % s.getsockname()[1], "--timeout", "1")
        took = time.time() - t0
    check(rc == 1 and "no HTTP answer" in out, "silent server: %d %r" % (rc, out))
    check(took < 20, "silent server: gave up after %.1f s, --timeout 1" % took)

    for bad in ("https://127.0.0.1/healthz", "127.0.0.1:8080", "http://", "http://[::1/x"):
        rc, out = hc(bad)
        check(rc == 2 and "expected one http://" in out, "bad URL %r: %d %r" % (bad, rc, out))
finally:
    srv.send_signal(signal.SIGTERM)
    srv.wait(30)
    subprocess.run(["rm", "-rf", tmp])
check(srv.returncode == 0, "dip serve exited with %d" % srv.returncode)
print("PASS")
