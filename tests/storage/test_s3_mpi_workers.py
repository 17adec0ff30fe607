# SPDX-License-Identifier: MIT
# dip process under mpirun (3 ranks) from s3:// to s3:// (s3rver on loopback): the workers get
# their inputs and put their outputs themselves and the coordinator ships keys, not bytes (issue
# 12). The workers' own environment cannot reach the bucket: they use the endpoint and
# credentials rank 0 ships with the job. A loopback proxy in front of s3rver finds which process opened each connection, so the
# test sees who read and wrote every object. One output is over 8 MiB (a multipart upload): the
# proxy kills the worker in the middle of that upload's second part, and the test checks that
# the object is not visible then (parts are not an object until the upload is completed) and
# that another worker redoes the task. Checked: every whole-object GET of an input and every PUT
# of an output came from a worker rank, never from rank 0; rank 0's MPI traffic (the summary's
# transport line) is a small fraction of the images' bytes, while with --no-worker-io it is more
# than all of them; the outputs are byte-identical to the local executor's on the same files.
# Last, an object task's deadline grows with its image, which only the worker sees.
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import cv2
import numpy as np

from diputil import mpi_sanitizer_env
from s3util import DIP, S3rver, check, dip, env

MPIEXEC = os.environ.get("MPIEXEC") or shutil.which("mpirun")
N = 12
VICTIM = "p007.png"  # noise: its PNG is over 8 MiB, so it goes up in parts


def socket_owner(port, server_port):
    """(pid, MPI rank or None) of the process holding the open loopback TCP socket from local
    port `port` to `server_port` (from /proc/net/tcp and /proc/PID/fd)."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            # skip sockets without an owner (TIME_WAIT: inode 0) that once used the same port
            if (int(parts[1].split(":")[1], 16) == port and
                    int(parts[2].split(":")[1], 16) == server_port and parts[9] != "0"):
                inode = parts[9]
                break
    if inode is None:
        return None, None
    target = "socket:[%s]" % inode
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) != target:
                    continue
            except OSError:
                continue
            rank = None
            try:
                for kv in open("/proc/%s/environ" % pid, "rb").read().split(b"\0"):
                    if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                        rank = int(kv.split(b"=", 1)[1])
            except OSError:
                pass
            return int(pid), rank
    return None, None


class OwnerProxy:
    """A TCP proxy on 127.0.0.1 in front of `target_port` that parses the HTTP requests passing
    through, records (method, path, range?, pid, rank) for each, and cuts the first PUT whose
    path ends with `victim`: it forwards the headers and part of the body, SIGKILLs the process
    that sent it, then closes both sides."""

    def __init__(self, target_port, victim):
        self.target_port = target_port
        self.victim = victim
        self.log = []
        self.cut = None  # (pid, rank, path) once the victim's upload was cut
        self.cut_event = threading.Event()
        self.visible_after_cut = None
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
            pid, rank = socket_owner(addr[1], self.port)
            threading.Thread(target=self.serve, args=(c, pid, rank), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self, c, pid, rank):
        try:
            up = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            c.close()
            return
        threading.Thread(target=self.pump, args=(up, c), daemon=True).start()
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    more = c.recv(65536)
                    if not more:
                        return
                    buf += more
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                hdrs = {k.strip().lower(): v.strip() for k, v in
                        (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                n = int(hdrs.get("content-length", "0"))
                with self.lock:
                    self.log.append((method, path, "range" in hdrs, pid, rank))
                    cut = (method == "PUT" and path.split("?")[0].endswith(self.victim)
                           and "partNumber=2&" in path and self.cut is None)
                    if cut:
                        self.cut = (pid, rank, path)
                up.sendall(head + b"\r\n\r\n")
                if cut:
                    # Part of the body (curl may wait for "100 Continue" first: the pump
                    # passes it), then the sender dies mid-upload.
                    sent = 0
                    while sent < 8192:
                        if not buf:
                            buf = c.recv(65536)
                            if not buf:
                                break
                        k = min(len(buf), 8192 - sent)
                        up.sendall(buf[:k])
                        buf = buf[k:]
                        sent += k
                    os.kill(pid, signal.SIGKILL)
                    time.sleep(0.5)
                    # Before the task can be redone (the coordinator waits DIP_MPI_LOST_S, 5 s,
                    # before it declares the worker lost): is any of the object visible?
                    self.visible_after_cut = head_status(self.target_port, "out",
                                                         path.split("?")[0].split("/out/", 1)[1])
                    self.cut_event.set()
                    return
                while n > 0:
                    if not buf:
                        buf = c.recv(65536)
                        if not buf:
                            return
                    k = min(len(buf), n)
                    up.sendall(buf[:k])
                    buf = buf[k:]
                    n -= k
        except OSError:
            pass
        finally:
            for s in (c, up):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def mpirun(e, args, timeout=300, worker_env=None):
    """dip process under mpirun with 3 ranks; with worker_env, ranks 1 and 2 start with those
    variables changed (an MPMD launch through env(1)), rank 0 with `e` alone."""
    cmd = [MPIEXEC, "--enable-recovery", "--allow-run-as-root", "--oversubscribe",
           "--mca", "btl", "self,vader,tcp"]
    dip_cmd = [DIP, "process", "--log-level", "2"] + args
    if worker_env:
        cmd += ["-np", "1"] + dip_cmd + [":", "-np", "2", "env"]
        cmd += ["%s=%s" % kv for kv in worker_env.items()] + dip_cmd
    else:
        cmd += ["-np", "3"] + dip_cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=mpi_sanitizer_env(dict(e)), errors="backslashreplace")


def transport(text):
    m = re.search(r"transport: rank 0 sent (\d+) bytes to the workers, received (\d+)", text)
    check(m is not None, "no transport line in the summary:\n" + text[-3000:])
    return int(m.group(1)), int(m.group(2))


def head_status(port, bucket, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("HEAD", "/%s/%s" % (bucket, key))
    st = conn.getresponse().status
    conn.close()
    return st


def main():
    if MPIEXEC is None:
        print("SKIP: no mpirun")
        raise SystemExit(77)
    srv = S3rver(["input", "out"])
    proxy = OwnerProxy(srv.port, VICTIM)
    tmp = tempfile.mkdtemp(prefix="dip-s3-mpiw-")
    try:
        direct = env(srv.url)
        names, in_bytes = [], 0
        rng = np.random.default_rng(12)
        for i in range(N):
            name = "p%03d.png" % i
            if name == VICTIM:
                img = rng.integers(0, 256, size=(1800, 2400, 3), dtype=np.uint8)
            else:
                small = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
                img = cv2.add(cv2.resize(small, (640, 480), interpolation=cv2.INTER_CUBIC),
                              rng.integers(0, 24, size=(480, 640, 3), dtype=np.uint8))
            path = os.path.join(tmp, name)
            cv2.imwrite(path, img)
            names.append(path)
            in_bytes += os.path.getsize(path)
            dip(["s3", "put", path, "s3://input/p/" + name], direct, check_rc=0)
        pipe = "sharpen | invert"
        r = subprocess.run([DIP, "process", "--quiet", "-p", pipe, "-o",
                            os.path.join(tmp, "loc") + "/"] + names,
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "local run: " + r.stderr)
        out_bytes = sum(os.path.getsize(os.path.join(tmp, "loc", n))
                        for n in os.listdir(os.path.join(tmp, "loc")))

        # Worker-side I/O, through the proxy; one worker dies in the middle of a put. The
        # workers' own environment points at a closed loopback port with an unknown key: they
        # reach the bucket only with the configuration rank 0 ships with the job.
        e = env(proxy.url)  # DIP_MPI_LOST_S: the default 5 s (no false loss on a busy machine)
        t0 = time.time()
        r = mpirun(e, ["-p", pipe, "-o", "s3://out/w/", "s3://input/p/*.png"],
                   worker_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                               "AWS_ACCESS_KEY_ID": "NOT-THE-KEY",
                               "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
        text = r.stderr + r.stdout
        print(text[-2500:])
        check(r.returncode == 0, "mpirun: exit %d" % r.returncode)
        check("%d done, 0 failed" % N in text, "summary")
        check(proxy.cut is not None, "no worker was caught putting %s" % VICTIM)
        check(proxy.cut_event.wait(30), "the cut did not finish")
        pid, rank, path = proxy.cut
        check(rank not in (None, 0), "the cut upload came from rank %s (pid %s), not a worker"
              % (rank, pid))
        check(re.search(r"^%d\s+\S+\s+LOST\s" % rank, text, re.M) is not None,
              "rank %d (killed mid-put) not listed as lost" % rank)
        print("killed rank %d (pid %d) in the middle of PUT %s; run took %.1f s"
              % (rank, pid, path, time.time() - t0))

        with proxy.lock:
            log = list(proxy.log)
        gets = [x for x in log if x[0] == "GET" and x[1].startswith("/input/p/p")
                and not x[2]]
        puts = [x for x in log if x[0] == "PUT" and x[1].startswith("/out/w/")]
        check(len(gets) >= N, "only %d whole-object GETs of inputs seen: %s" % (len(gets), gets))
        check(len(puts) >= N, "only %d PUTs of outputs seen" % len(puts))
        for what, rows in (("GET", gets), ("PUT", puts)):
            bad = [x for x in rows if x[4] in (None, 0)]
            check(not bad, "%s not from a worker rank: %s" % (what, bad))
        print("input GETs by rank:", sorted({x[4] for x in gets}),
              "output PUTs by rank:", sorted({x[4] for x in puts}))
        victim_puts = [x for x in puts if x[1].split("?")[0].endswith(VICTIM)]
        check(len(victim_puts) >= 2 and victim_puts[-1][4] != rank,
              "the cut put was not redone by another worker: %s" % victim_puts)

        sent, received = transport(text)
        print("transport: sent %d, received %d; inputs %d bytes, outputs %d bytes"
              % (sent, received, in_bytes, out_bytes))
        check(sent < in_bytes / 20, "rank 0 sent %d bytes for %d bytes of inputs: it shipped "
              "images" % (sent, in_bytes))
        check(received < out_bytes / 20, "rank 0 received %d bytes for %d bytes of outputs"
              % (received, out_bytes))

        # Byte-identical to the local executor.
        for i in range(N):
            got = os.path.join(tmp, "got.png")
            dip(["s3", "get", "s3://out/w/p%03d.png" % i, got], direct, check_rc=0)
            check(open(got, "rb").read() ==
                  open(os.path.join(tmp, "loc", "p%03d.png" % i), "rb").read(),
                  "p%03d.png differs from the local executor" % i)

        check(proxy.visible_after_cut == 404,
              "%s was visible (HEAD %s) after its uploader died mid-part"
              % (VICTIM, proxy.visible_after_cut))
        print("after the kill mid-part, HEAD %s: %d (not visible)" % (VICTIM,
                                                                      proxy.visible_after_cut))

        # The same batch with --no-worker-io: rank 0 ships the images (the counter sees them).
        r = mpirun(direct, ["--no-worker-io", "-p", pipe, "-o", "s3://out/b/",
                            "s3://input/p/*.png"])
        text = r.stderr + r.stdout
        check(r.returncode == 0 and "%d done, 0 failed" % N in text,
              "--no-worker-io run:\n" + text[-3000:])
        sent2, received2 = transport(text)
        print("--no-worker-io transport: sent %d, received %d" % (sent2, received2))
        check(sent2 > in_bytes and received2 > out_bytes,
              "--no-worker-io: rank 0 should ship every image (sent %d, received %d)"
              % (sent2, received2))
        for i in range(N):
            got = os.path.join(tmp, "got.png")
            dip(["s3", "get", "s3://out/b/p%03d.png" % i, got], direct, check_rc=0)
            check(open(got, "rb").read() ==
                  open(os.path.join(tmp, "loc", "p%03d.png" % i), "rb").read(),
                  "--no-worker-io: p%03d.png differs" % i)

        # Deadlines: rank 0 never sees an object task's image, so its worker reports the size
        # once it has read the header and the deadline grows with it (--task-timeout plus 2 s
        # per megapixel), as for shipped items. Two 12-megapixel noise PNGs (36 MB each, to get,
        # encode and put) with --task-timeout 1: each takes seconds, well inside 1 + 24 s, and
        # no worker may be declared lost for it.
        big = []
        for i in range(2):
            path = os.path.join(tmp, "big%d.png" % i)
            cv2.imwrite(path, rng.integers(0, 256, size=(3000, 4000, 3), dtype=np.uint8))
            dip(["s3", "put", path, "s3://input/big/big%d.png" % i], direct, check_rc=0)
            big.append(path)
        r = subprocess.run([DIP, "process", "--quiet", "-p", "invert", "-o",
                            os.path.join(tmp, "bigloc") + "/"] + big,
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, "local run: " + r.stderr)
        t0 = time.time()
        r = mpirun(direct, ["--task-timeout", "1", "-p", "invert", "-o", "s3://out/big/",
                            "s3://input/big/"])
        text = r.stderr + r.stdout
        print("two 12-megapixel objects with --task-timeout 1: %.1f s" % (time.time() - t0))
        check(r.returncode == 0 and "2 done, 0 failed" in text, "big run:\n" + text[-3000:])
        check("lost" not in text and "LOST" not in text,
              "a worker was declared lost over a big object's deadline:\n" + text[-3000:])
        for i in range(2):
            got = os.path.join(tmp, "got.png")
            dip(["s3", "get", "s3://out/big/big%d.png" % i, got], direct, check_rc=0)
            check(open(got, "rb").read() ==
                  open(os.path.join(tmp, "bigloc", "big%d.png" % i), "rb").read(),
                  "big%d.png differs" % i)
    finally:
        proxy.close()
        srv.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


main()
