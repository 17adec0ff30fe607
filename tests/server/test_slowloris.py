# SPDX-License-Identifier: MIT
# Slowloris (issue 9, finding 2): 520 connections from one address that send a header byte now
# and then must not take the service down. With a per-address connection limit they cannot fill
# the server's slots, with epoll threads they cost no thread each, and a connection whose headers
# are not complete within --header-timeout is cut even though it keeps sending. /healthz from
# another address answers promptly throughout. Bounded to a few seconds.
import resource
import socket
import time

from srvutil import Server, check

s = None
socks = []
try:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4096)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    s = Server("--quiet", "--header-timeout", "3", "--max-per-ip", "32", "--timeout", "60")

    # The attacker: 520 connections from 127.0.0.2, each with the start of a request.
    for i in range(520):
        c = socket.socket()
        c.bind(("127.0.0.2", 0))
        c.settimeout(2)
        try:
            c.connect(("127.0.0.1", s.port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        except OSError:
            c.close()
            continue
        socks.append(c)
    check(len(socks) > 0, "the attacker got some connections")

    # The victim, from 127.0.0.1: /healthz answers, fast, again and again.
    worst = 0
    for i in range(20):
        t0 = time.time()
        try:
            ok = s.get("/healthz", timeout=5).status == 200
        except OSError as e:
            ok = False
            print("healthz error:", e)
        worst = max(worst, time.time() - t0)
        check(ok, "healthz %d during 520 slow connections" % i)
    check(worst < 2.0, "healthz latency during the attack: worst %.2fs" % worst)
    print("healthz worst latency during 520 slow connections: %.3f s" % worst)

    # A connection that keeps trickling header bytes is still cut at the header deadline (3 s).
    c = socket.socket()
    c.bind(("127.0.0.3", 0))
    c.settimeout(1)
    c.connect(("127.0.0.1", s.port))
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    t0 = time.time()
    closed = False
    while time.time() - t0 < 12 and not closed:
        try:
            c.sendall(b"X")
            try:
                if c.recv(1) == b"":
                    closed = True
            except socket.timeout:
                pass
        except OSError:
            closed = True
        time.sleep(0.3)
    took = time.time() - t0
    check(closed, "a trickling request was never cut")
    check(took < 9, "cut after %.1f s (header timeout 3 s)" % took)
    c.close()
    check(s.healthy(), "healthy at the end")
    print("ok")
finally:
    for c in socks:
        c.close()
    if s:
        s.close()
