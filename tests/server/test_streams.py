# SPDX-License-Identifier: MIT
# Event streams (issue 9, finding 4): one user cannot hold every connection with event streams
# (a per-user cap, and one in all), and a stream whose peer went away is noticed within a couple
# of seconds, freeing its place, rather than at the next progress event. Bounded to a few seconds.
import socket
import time

from srvutil import Server, check, encode, image

s = None


def open_stream(port, job_id, timeout=5):
    """Opens an event stream; returns (status, socket) with the headers read."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c.sendall(("GET /api/v1/jobs/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Accept: text/event-stream\r\n\r\n" % job_id).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = c.recv(4096)
        if not b:
            break
        head += b
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return status, c


try:
    s = Server("--quiet", "--threads", "1", "--max-user-streams", "4", "--max-streams", "6")
    # A job that stays unfinished while the streams are open.
    slow = s.submit([("s.png", encode(image(1600, 1200, 7), ".png"))],
                    pipeline="median(size=41) | median(size=41) | median(size=41)").json()
    jid = slow["id"]
    streams = []
    for i in range(4):
        st, c = open_stream(s.port, jid)
        check(st == 200, "stream %d: %d" % (i, st))
        streams.append(c)
    st, c = open_stream(s.port, jid)
    check(st == 429, "a fifth stream of one user is refused: %d" % st)
    c.close()
    check(s.healthy(), "healthz while the streams are open")

    # Peers that go away free their places within seconds.
    for c in streams:
        c.close()
    t0 = time.time()
    reopened = []
    while len(reopened) < 4 and time.time() - t0 < 8:
        st, c = open_stream(s.port, jid)
        if st == 200:
            reopened.append(c)
        else:
            c.close()
            time.sleep(0.2)
    took = time.time() - t0
    check(len(reopened) == 4, "closed streams were not noticed within 8 s")
    print("closed streams noticed within %.1f s" % took)
    for c in reopened:
        c.close()
    s.request("DELETE", "/api/v1/jobs/" + jid)
    check(s.healthy(), "healthy at the end")
    print("ok")
finally:
    if s:
        s.close()
