# SPDX-License-Identifier: MIT
# The S3 client (dip s3 ls|put|get|rm) against a real s3rver on loopback: put and get, byte for
# byte; listing by prefix; multipart above 8 MiB (seen in the requests); a 503 injected in the
# middle of a part upload and of a download, retried; a server that keeps failing, reported after
# the last attempt; a missing key, a missing bucket and an unknown access key, each with its own
# error; virtual-host addressing. s3rver does not verify signatures (see
# /work/shared/notes/s3-test-server.md), so the signature itself is checked against AWS's
# published example in test_s3_sigv4.py.
import os
import tempfile

from s3util import Proxy, S3rver, check, dip, env


def main():
    srv = S3rver(["bkt", "other"])
    proxy = Proxy(srv.port)
    tmp = tempfile.mkdtemp(prefix="dip-s3-client-")
    try:
        e = env(proxy.url, DIP_S3_MAX_ATTEMPTS="4")
        small = os.path.join(tmp, "small.bin")
        big = os.path.join(tmp, "big.bin")
        with open(small, "wb") as f:
            f.write(os.urandom(1000))
        with open(big, "wb") as f:
            f.write(os.urandom(20 * 1024 * 1024 + 123))  # 3 parts of 8 MiB
        weird_key = "in/photos/a b+c&d=é.bin"

        # put, get, ls
        dip(["s3", "put", small, "s3://bkt/in/small.bin"], e, check_rc=0)
        dip(["s3", "put", small, "s3://bkt/" + weird_key], e, check_rc=0)
        dip(["s3", "put", small, "s3://bkt/elsewhere/x.bin"], e, check_rc=0)
        got = os.path.join(tmp, "got.bin")
        dip(["s3", "get", "s3://bkt/" + weird_key, got], e, check_rc=0)
        check(open(got, "rb").read() == open(small, "rb").read(), "small object differs")
        p = dip(["s3", "ls", "s3://bkt/in/"], e, check_rc=0)
        keys = [line.split(None, 1)[1] for line in p.stdout.splitlines()]
        check(keys == sorted(["in/small.bin", weird_key]), "ls in/: %r" % keys)
        check(p.stdout.split()[0] == "1000", "ls size: %r" % p.stdout)

        # multipart: CreateMultipartUpload, 3 parts, Complete
        proxy.log.clear()
        dip(["s3", "put", big, "s3://bkt/big.bin"], e, check_rc=0)
        posts = [x for x in proxy.log if x[0] == "POST"]
        parts = [x for x in proxy.log if x[0] == "PUT" and "partNumber=" in x[1]]
        check(any("uploads" in x[1] for x in posts), "no CreateMultipartUpload: %r" % proxy.log)
        check(len(parts) == 3, "want 3 parts: %r" % proxy.log)
        check(any("uploadId=" in x[1] for x in posts), "no CompleteMultipartUpload")
        dip(["s3", "get", "s3://bkt/big.bin", got], e, check_rc=0)
        check(open(got, "rb").read() == open(big, "rb").read(), "multipart object differs")

        # a 503 in the middle of part 2's upload: retried, the object is whole
        proxy.log.clear()
        state = {"n": 0}

        def fail_part2_once(method, path):
            if method == "PUT" and "partNumber=2&" in path and state["n"] == 0:
                state["n"] = 1
                return True
            return False
        proxy.fail_when = fail_part2_once
        dip(["s3", "put", big, "s3://bkt/big2.bin"], e, check_rc=0)
        check(len(proxy.failed) == 1, "the 503 was not injected: %r" % proxy.log)
        part2 = [x for x in proxy.log if x[0] == "PUT" and "partNumber=2&" in x[1]]
        check(len(part2) == 2, "part 2 not retried exactly once: %r" % part2)
        dip(["s3", "get", "s3://bkt/big2.bin", got], e, check_rc=0)
        check(open(got, "rb").read() == open(big, "rb").read(), "object after a retried part differs")

        # a 503 on a download: retried
        proxy.failed.clear()
        state["n"] = 0

        def fail_get_once(method, path):
            if method == "GET" and path.startswith("/bkt/big.bin") and state["n"] == 0:
                state["n"] = 1
                return True
            return False
        proxy.fail_when = fail_get_once
        os.unlink(got)
        dip(["s3", "get", "s3://bkt/big.bin", got], e, check_rc=0)
        check(len(proxy.failed) == 1, "the GET 503 was not injected")
        check(open(got, "rb").read() == open(big, "rb").read(), "object after a retried GET differs")

        # a server that keeps failing: an error after the last attempt, no file left behind
        proxy.fail_when = lambda m, p: m == "GET"
        proxy.failed.clear()
        out = os.path.join(tmp, "never.bin")
        p = dip(["s3", "get", "s3://bkt/in/small.bin", out], e)
        check(p.returncode == 6, "persistent 503: exit %d (%s)" % (p.returncode, p.stderr))
        check("after 4 attempts" in p.stderr and "503 SlowDown" in p.stderr, p.stderr)
        check(len(proxy.failed) == 4, "want 4 attempts, got %d" % len(proxy.failed))
        check(not os.path.exists(out), "a failed download left %s" % out)
        proxy.fail_when = lambda m, p: False

        # errors: each kind named
        p = dip(["s3", "get", "s3://bkt/in/nope.bin", out], e)
        check(p.returncode == 2 and "NoSuchKey" in p.stderr and "s3://bkt/in/nope.bin" in p.stderr,
              "missing key: %d %s" % (p.returncode, p.stderr))
        p = dip(["s3", "ls", "s3://nobucket/"], e)
        check(p.returncode == 2 and "bucket 'nobucket' does not exist" in p.stderr,
              "missing bucket: %d %s" % (p.returncode, p.stderr))
        p = dip(["s3", "put", small, "s3://nobucket/x"], e)
        check(p.returncode == 2 and "does not exist" in p.stderr, "put to a missing bucket: " + p.stderr)
        bad = env(proxy.url, AWS_ACCESS_KEY_ID="AKIANOTKNOWN")
        p = dip(["s3", "ls", "s3://bkt/"], bad)
        check(p.returncode == 9 and "InvalidAccessKeyId" in p.stderr,
              "unknown access key: %d %s" % (p.returncode, p.stderr))
        p = dip(["s3", "ls", "s3://Bad_Bucket/"], e)
        check(p.returncode == 2 and "bucket name" in p.stderr, "bad bucket name: " + p.stderr)

        # Temporary credentials: a long session token is sent, and signed.
        proxy.log.clear()
        token = "FwoGZXIvYXdzE" + "x" * 1500
        dip(["s3", "ls", "s3://bkt/in/"], env(proxy.url, AWS_SESSION_TOKEN=token), check_rc=0)
        h = {k.lower(): v for k, v in proxy.log[-1][2].items()}
        check(h.get("x-amz-security-token") == token, "session token header: %r" % h.keys())
        check("x-amz-security-token" in h.get("authorization", ""), "session token not signed")

        # rm
        dip(["s3", "rm", "s3://bkt/in/small.bin"], e, check_rc=0)
        p = dip(["s3", "ls", "s3://bkt/in/"], e, check_rc=0)
        check("in/small.bin" not in p.stdout, "rm did not remove: " + p.stdout)

        # virtual-host addressing: bucket.s3.amazonaws.com, connected to the loopback s3rver
        # (s3rver maps that host name to the bucket); no name is resolved.
        v = env("http://s3.amazonaws.com", DIP_S3_ADDRESSING="virtual",
                DIP_S3_CONNECT_TO="::127.0.0.1:%d" % srv.port)
        dip(["s3", "put", small, "s3://other/vhost.bin"], v, check_rc=0)
        p = dip(["s3", "ls", "s3://other/"], e, check_rc=0)
        check("vhost.bin" in p.stdout, "virtual-host put not seen with path style: " + p.stdout)
        dip(["s3", "get", "s3://other/vhost.bin", got], v, check_rc=0)
        check(open(got, "rb").read() == open(small, "rb").read(), "virtual-host get differs")
    finally:
        proxy.close()
        srv.close()
    print("ok")


main()
