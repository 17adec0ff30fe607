# SPDX-License-Identifier: MIT
# The figures of issue 9 for one `dip serve` binary, so that before and after can be compared on
# the same machine: server RSS during 6 unauthenticated 300 MiB uploads, /healthz latency during
# 520 slow connections from one address, and server RSS during 4 slow downloads of a large result
# (and of its zip). Uses only options every version has.
#   /usr/bin/python3 bench/hostile/figures.py path/to/dip
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "harness"))
os.environ["DIP"] = sys.argv[1] if len(sys.argv) > 1 else "build/dip"
import srvutil  # noqa: E402
from srvutil import Server, encode, image  # noqa: E402

srvutil.DIP = os.environ["DIP"]


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def peak_during(pid, fn, seconds):
    peak = [rss_mb(pid)]
    done = [False]

    def sample():
        while not done[0]:
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.05)
    t = threading.Thread(target=sample)
    t.start()
    try:
        fn()
        end = time.time() + seconds
        while time.time() < end:
            time.sleep(0.1)
    finally:
        done[0] = True
        t.join()
    return peak[0]


soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

# ---- 1: six unauthenticated 300 MiB uploads ----
s = Server("--quiet", "--max-request", str(400 << 20))
s.token_create("alice")
base = rss_mb(s.proc.pid)
stop = [False]


def upload():
    try:
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall(("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                   "multipart/form-data; boundary=x\r\nContent-Length: %d\r\n\r\n"
                   % (300 << 20)).encode())
        chunk = b"\0" * (1 << 20)
        for _ in range(300):
            if stop[0]:
                break
            c.sendall(chunk)
        c.settimeout(10)
        c.recv(100)
        c.close()
    except OSError:
        pass


threads = [threading.Thread(target=upload) for _ in range(6)]
peak = peak_during(s.proc.pid, lambda: [t.start() for t in threads], 8)
stop[0] = True
for t in threads:
    t.join()
print("6 unauthenticated 300 MiB POSTs: RSS %.0f MiB -> peak %.0f MiB" % (base, peak))
s.close()

# ---- 2: /healthz during 520 slow connections ----
s = Server("--quiet")
socks = []
for i in range(520):
    c = socket.socket()
    c.bind(("127.0.0.2", 0))
    c.settimeout(2)
    try:
        c.connect(("127.0.0.1", s.port))
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        socks.append(c)
    except OSError:
        c.close()
lat, fails = [], 0
for i in range(20):
    t0 = time.time()
    try:
        ok = s.get("/healthz", timeout=5).status == 200
    except OSError:
        ok = False
    lat.append(time.time() - t0)
    fails += 0 if ok else 1
lat.sort()
print("/healthz during 520 slow connections: %d/20 failed, p50 %.1f ms, max %.1f ms"
      % (fails, lat[10] * 1000, lat[-1] * 1000))
for c in socks:
    c.close()
s.close()

# ---- 5: four slow downloads of a large result ----
s = Server("--quiet")
j = s.submit([("big.png", encode(image(400, 300, 1), ".png"))],
             pipeline="resize(width=8000,height=6000)", fmt="bmp").json()
j = s.wait(j["id"], timeout=600)
size = j["items"][0]["bytes_out"]
for what, path in (("result", "/api/v1/jobs/%s/results/0" % j["id"]),
                   ("zip", "/api/v1/jobs/%s/archive.zip" % j["id"])):
    base = rss_mb(s.proc.pid)
    conns = []

    def start():
        for _ in range(4):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
            c.recv(65536)
            conns.append(c)
    peak = peak_during(s.proc.pid, start, 5)
    for c in conns:
        c.close()
    print("4 slow downloads of a %.0f MB %s: RSS %.0f MiB -> peak %.0f MiB"
          % (size / 1e6, what, base, peak))
    time.sleep(1)
s.close()
