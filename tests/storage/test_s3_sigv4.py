# SPDX-License-Identifier: MIT
# The signature dip sends, checked against AWS's published SigV4 example ("Example: GET Object",
# Amazon S3 API reference, Authenticating Requests: Using the Authorization Header): bucket
# examplebucket, GET /test.txt, Range bytes=0-9, 20130524T000000Z, us-east-1, the documented
# example keys. A loopback listener stands in for S3 and records the request; the Authorization
# header must equal the published one byte for byte. (s3rver never checks signatures.)
import os
import socket
import tempfile
import threading

from s3util import check, dip, env

WANT = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}

    def serve():
        c, _ = srv.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        got["req"] = data.decode()
        c.sendall(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n"
                  b"Connection: close\r\n\r\n0123456789")
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    e = env("http://s3.amazonaws.com", AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
            AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            DIP_S3_ADDRESSING="virtual", DIP_S3_FIXED_DATE="20130524T000000Z",
            DIP_S3_CONNECT_TO="::127.0.0.1:%d" % port)
    out = os.path.join(tempfile.mkdtemp(prefix="dip-sigv4-"), "test.txt")
    dip(["s3", "get", "--range", "0-9", "s3://examplebucket/test.txt", out], e, timeout=60,
        check_rc=0)
    t.join(10)
    req = got.get("req", "")
    lines = req.split("\r\n")
    check(lines[0] == "GET /test.txt HTTP/1.1", "request line: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), v.strip())
    check(headers.get("host") == "examplebucket.s3.amazonaws.com", "host: %r" % headers.get("host"))
    check(headers.get("authorization") == WANT,
          "Authorization differs from AWS's example:\n got  %s\n want %s"
          % (headers.get("authorization"), WANT))
    check(open(out, "rb").read() == b"0123456789", "range body")
    print("ok")


main()
