# SPDX-License-Identifier: MIT
"""What a listener on the network sees of a job, with and without the cluster key. Three fake
hosts (network namespaces, hostnet.py), one rank on each; tcpdump (Debian's) captures both
workers' links (the veths) while `dip process` runs a small batch. The TCP streams are put back
together and searched for 64-byte windows of every input and every output file, for the
pipeline's text, and for the file names. dip's own traffic (Open MPI's TCP BTL, put on a port
range of its own) is told apart from Open MPI's start-up traffic (mpirun to its daemons):
- without a key dip's traffic shows the windows and the pipeline (so the test can see them),
  and dip warns once that traffic between hosts is in clear;
- with --cluster-key the whole capture shows none of the windows, and dip's traffic neither the
  pipeline nor a file name;
- the file names never cross in dip's traffic (only rank 0 reads and writes files), in either
  run; Open MPI's start-up traffic carries the command line (file names, pipeline) in clear,
  which the test prints and the README states;
- the outputs are the local executor's bytes either way."""
import os
import random
import shutil
import signal
import struct
import subprocess
import time

from hostnet import Hosts
from mpiutil import DIP, MPIEXEC, check, env, make_images, run_local, same_outputs, tmpdir

TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"
PIPE = "gaussian(size=3) | sharpen(amount=0.75)"
WINDOW = 64
BTL_PORTS = (47300, 47500)  # Open MPI's TCP BTL listens here: dip's messages between ranks
# Open MPI's start-up channel (OOB: mpirun and its daemons) listens on ports of another range.
# Left to the kernel, mpirun's listening port once fell in BTL_PORTS (a 200-in-28 000 chance):
# its traffic, the command line with the file names, was then counted as dip's, and the test
# failed with "file names crossed the network".
OOB_PORTS = (47600, 47800)


def tcp_streams(pcap, listeners=None):
    """{(src, sport, dst, dport): bytes} of the TCP payloads in a pcap file (Ethernet, IPv4),
    each stream in sequence order with retransmissions dropped. `listeners` (a set) gets the
    (address, port) each connection was opened to (its SYN's destination)."""
    data = open(pcap, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(end + "I", data[20:24])[0]
    check(linktype == 1, "capture is not Ethernet (link type %d)" % linktype)
    segs = {}
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 34 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
            continue
        ihl = (pkt[14] & 15) * 4
        total = struct.unpack(">H", pkt[16:18])[0]
        ip = pkt[14:14 + total]
        tcp = ip[ihl:]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        if listeners is not None and tcp[13] & 0x12 == 0x02:  # SYN without ACK
            listeners.add((bytes(ip[16:20]), dport))
        payload = tcp[(tcp[12] >> 4) * 4:]
        if payload:
            key = (bytes(ip[12:16]), sport, bytes(ip[16:20]), dport)
            segs.setdefault(key, {}).setdefault(seq, payload)
    streams = {}
    for key, by_seq in segs.items():
        out = bytearray()
        base = min(by_seq)
        for seq in sorted(by_seq):  # (no wrap: the streams are far below 4 GB)
            rel = seq - base
            p = by_seq[seq]
            if rel + len(p) <= len(out):
                continue
            out += p[len(out) - rel:] if rel < len(out) else p
        streams[key] = bytes(out)
    return streams


def windows(path, n, rng):
    data = open(path, "rb").read()
    starts = sorted(rng.sample(range(0, len(data) - WINDOW), min(n, len(data) - WINDOW)))
    return [data[s:s + WINDOW] for s in starts]


def run(h, d, inputs, out, key):
    """Runs the job under a capture of both workers' links; returns (log, wire bytes)."""
    caps, dumps = [], []
    for i in (1, 2):
        cap = os.path.join(d, "cap%d-%s.pcap" % (i, "key" if key else "clear"))
        caps.append(cap)
        dumps.append(subprocess.Popen([TCPDUMP, "-i", h.veths[i], "-p", "-n", "-s", "0",
                                       "-B", "16384", "-U", "-w", cap, "tcp"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    # tcpdump prints "listening on ..." once the capture runs.
    for p in dumps:
        line = p.stderr.readline().decode(errors="replace")
        check("listening on" in line, "tcpdump did not start: %s" % line)
    extra = ["--cluster-key", key] if key else []
    cmd = [DIP, "mpirun", *h.mpirun_args(3), "--mca", "btl_tcp_port_min_v4", str(BTL_PORTS[0]),
           "--mca", "btl_tcp_port_range_v4", str(BTL_PORTS[1] - BTL_PORTS[0]),
           "--mca", "oob_tcp_dynamic_ipv4_ports", "%d-%d" % OOB_PORTS, DIP, "process",
           "-p", PIPE, "-o", out + "/", "-f", "png", "--log-level", "1", *extra, *inputs]
    # On a loaded, shared machine Open MPI's daemons now and then fail to start (a session
    # folder that exists, a daemon that cannot reach mpirun: hostnet.py); nothing of dip has run
    # then (no output), so the launch is retried.
    for attempt in range(4):
        r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=240,
                           env=env(DIP_MPIRUN=MPIEXEC))
        ran = os.path.isdir(out) and any(".tmp." not in n for n in os.listdir(out))
        if r.returncode == 0 or ran or "ORTE" not in r.stderr:
            break
        print("launch attempt %d: Open MPI's daemons did not start; retrying" % (attempt + 1))
        time.sleep(1 + attempt)
    time.sleep(0.5)
    for p in dumps:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    dip_wire, mpi_wire = [], []
    for cap in caps:
        listeners = set()
        for (src, sport, dst, dport), data in tcp_streams(cap, listeners).items():
            # dip's traffic: a connection opened to a BTL port. By the port its SYN went to, not
            # by either port: a start-up connection's own (ephemeral) port may fall in the BTL
            # range by chance, and its command line then looked like dip's clear traffic.
            opened_to = dport if (dst, dport) in listeners else sport
            btl = BTL_PORTS[0] <= opened_to < BTL_PORTS[1]
            (dip_wire if btl else mpi_wire).append(data)
    return r, b"\0".join(dip_wire), b"\0".join(mpi_wire)


d = tmpdir()
rng = random.Random(17)
# JPEG inputs in, PNG outputs back: encoded files cross the network both ways.
inputs = make_images(os.path.join(d, "in"), 4, 800, 600, seed=21, prefix="payroll-scan-",
                     ext="jpg")
run_local(PIPE, inputs, os.path.join(d, "local") + "/", extra=("-f", "png"))
key = os.path.join(d, "cluster.key")
check(subprocess.run([DIP, "key", "create", key]).returncode == 0, "dip key create failed")

with Hosts(d, n=3, slots=(1, 1, 1)) as h:
    results = {}
    for mode in ("clear", "key"):
        out = os.path.join(d, "out-" + mode)
        r, wire, launch = run(h, d, inputs, out, key if mode == "key" else None)
        text = r.stderr + r.stdout
        check(r.returncode == 0, "%s run: dip mpirun exited %d" % (mode, r.returncode), text)
        check(len(wire) > 100000, "%s run: only %d bytes captured" % (mode, len(wire)), text)
        bad = same_outputs(os.path.join(d, "local"), out)
        check(not bad, "%s run: outputs differ from the local executor: %s" % (mode, bad), text)
        seen = {}
        for kind, folder in (("input", os.path.join(d, "in")), ("output", out)):
            total = found = elsewhere = 0
            for name in sorted(os.listdir(folder)):
                for w in windows(os.path.join(folder, name), 40, rng):
                    total += 1
                    found += w in wire
                    elsewhere += w in launch
            seen[kind] = (found, total)
            check(elsewhere == 0, "%s run: %d %s windows in Open MPI's start-up traffic"
                  % (mode, elsewhere, kind))
        names = sum(os.path.basename(i).encode() in wire for i in inputs)
        pipeline = PIPE.encode() in wire
        warned = text.count("cluster traffic is not encrypted")
        results[mode] = (seen, names, pipeline, warned)
        print("%-5s run: dip's traffic %d bytes: input windows seen %d/%d, output windows %d/%d, "
              "file names %d/%d, pipeline text %s; clear-traffic warnings %d"
              % (mode, len(wire), *seen["input"], *seen["output"], names, len(inputs),
                 "seen" if pipeline else "not seen", warned))
        print("      Open MPI's start-up traffic %d bytes: file names %d/%d, pipeline text %s "
              "(the command line, not dip's to seal)"
              % (len(launch), sum(os.path.basename(i).encode() in launch for i in inputs),
                 len(inputs), "seen" if PIPE.encode() in launch else "not seen"))

seen, names, pipeline, warned = results["clear"]
# The capture works: in clear nearly every window is there (a dropped packet may hide a few).
for kind in ("input", "output"):
    check(seen[kind][0] >= 0.9 * seen[kind][1],
          "without a key only %d/%d %s windows were seen: the capture is not working"
          % (*seen[kind], kind))
check(pipeline, "without a key the pipeline text is not in the capture")
check(warned == 1, "without a key on several hosts dip should warn once, warned %d times" % warned)
check(names == 0, "file names crossed the network (only rank 0 should know them)")
seen, names, pipeline, warned = results["key"]
for kind in ("input", "output"):
    check(seen[kind][0] == 0, "with the key %d/%d %s windows are in clear on the wire"
          % (*seen[kind], kind))
check(not pipeline, "with the key the pipeline text is in clear on the wire")
check(names == 0, "with the key file names are on the wire")
check(warned == 0, "with the key dip warned about clear traffic")
print("ok")
