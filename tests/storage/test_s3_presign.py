# SPDX-License-Identifier: MIT
# Presigned URLs (SigV4 query signing, computed by dip since libcurl cannot presign), checked
# against AWS's published example ("Authenticating Requests: Using Query Parameters", Amazon S3
# API reference): GET examplebucket/test.txt, X-Amz-Expires=86400, 20130524T000000Z, us-east-1,
# the documented example keys; the signature must be AWS's byte for byte. Then a URL presigned for
# a real s3rver on loopback fetches the object's bytes with no other credentials, and a tampered
# one is refused. No request leaves the machine (presigning makes none).
import os
import urllib.error
import urllib.request

from s3util import S3rver, check, dip, env

WANT_SIG = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
WANT_URL = ("http://examplebucket.s3.amazonaws.com/test.txt"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=" + WANT_SIG)


def main():
    e = env("http://s3.amazonaws.com", AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
            AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            DIP_S3_ADDRESSING="virtual", DIP_S3_FIXED_DATE="20130524T000000Z",
            DIP_S3_CONNECT_TO="::127.0.0.1:9")
    p = dip(["s3", "presign", "--expires", "86400", "s3://examplebucket/test.txt"], e,
            check_rc=0)
    got = p.stdout.strip()
    check(got == WANT_URL, "presigned URL differs from AWS's example:\n got  %s\n want %s"
          % (got, WANT_URL))
    p = dip(["s3", "presign", "--expires", "0", "s3://examplebucket/test.txt"], e)
    check(p.returncode == 2 and "--expires 0" in p.stderr, "bad expiry: %s" % p.stderr)
    p = dip(["s3", "presign", "s3://examplebucket/test.txt"],
            dict(e, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY=""))
    check(p.returncode != 0 and "credentials" in p.stderr, "no credentials: %s" % p.stderr)

    s3 = S3rver(["bkt"])
    try:
        e = env(s3.url)
        src = os.path.join(s3.dir, "obj")
        data = os.urandom(100000)
        with open(src, "wb") as f:
            f.write(data)
        dip(["s3", "put", src, "s3://bkt/dir/a file+x.bin"], e, check_rc=0)
        url = dip(["s3", "presign", "s3://bkt/dir/a file+x.bin"], e, check_rc=0).stdout.strip()
        check(url.startswith(s3.url + "/bkt/dir/a%20file%2Bx.bin?"), "path style URL: " + url)
        with urllib.request.urlopen(url, timeout=60) as u:
            check(u.read() == data, "the presigned URL gives the object's bytes")
        # s3rver checks the access key id of a presigned URL: an unknown one is refused.
        bad = url.replace("Credential=S3RVER", "Credential=NOBODY")
        try:
            urllib.request.urlopen(bad, timeout=60).read()
            check(False, "an unknown access key id in the URL was accepted")
        except urllib.error.HTTPError as x:
            check(x.code == 403, "unknown key id: %d" % x.code)
        print("ok")
    finally:
        s3.close()


main()
