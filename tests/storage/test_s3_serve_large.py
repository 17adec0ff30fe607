# SPDX-License-Identifier: MIT
# A blob over 8 MiB, encrypted, into object storage: `dip serve --blobs s3://... --encrypt-key K`
# seals the upload as it sends it in 8 MiB parts; a 503 injected in the middle of part 2 makes
# that part go again from its start, and the stored object still opens (the result is
# byte-identical to `dip process` on the local file) and is exactly the input plus the 48 bytes
# of header and tag. The endpoint comes from --s3-endpoint here.
import os
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
from srvutil import Server, encode  # noqa: E402
from s3util import DIP, Proxy, S3rver, check, dip, env  # noqa: E402


def main():
    s3 = S3rver(["blobs"])
    proxy = Proxy(s3.port)
    svc = None
    tmp = tempfile.mkdtemp(prefix="dip-s3-large-")
    try:
        rng = np.random.RandomState(7)
        img = rng.randint(0, 256, size=(2200, 2000, 3), dtype=np.uint8)
        data = encode(img, ".png")
        check(len(data) > 9 * 1024 * 1024, "input of %d bytes is not over 8 MiB" % len(data))
        src = os.path.join(tmp, "big.png")
        open(src, "wb").write(data)
        ref = os.path.join(tmp, "ref.png")
        p = subprocess.run([DIP, "process", "--quiet", "-p", "invert", "-f", "png", "-o", ref, src],
                           capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, "local run: " + p.stderr)

        e = env(proxy.url, DIP_S3_MAX_ATTEMPTS="4")
        key = os.path.join(tmp, "k")
        dip(["key", "create", key], e, check_rc=0)
        state = {"n": 0}

        def fail_part2_once(method, path):
            if method == "PUT" and "partNumber=2&" in path and state["n"] == 0:
                state["n"] = 1
                return True
            return False
        proxy.fail_when = fail_part2_once
        # The endpoint from the flag this time, over the environment's (a closed loopback port).
        e_flag = dict(e, AWS_ENDPOINT_URL="http://127.0.0.1:9")
        svc = Server("--threads", "2", "--quiet", "--blobs", "s3://blobs/big", "--encrypt-key", key,
                     "--s3-endpoint", proxy.url, "--s3-addressing", "path", env=e_flag)
        j = svc.wait(svc.submit([("big.png", data)], pipeline="invert", fmt="png").json()["id"],
                     timeout=300)
        check(j["state"] == "done", "job: %r" % j)
        check(len(proxy.failed) == 1, "the 503 was not injected: %r" % proxy.log)
        part2 = [x for x in proxy.log if x[0] == "PUT" and "partNumber=2&" in x[1]]
        check(len(part2) >= 2, "part 2 not retried: %r" % part2)
        got = svc.get(j["items"][0]["result_url"]).body
        check(got == open(ref, "rb").read(), "result differs from the local run")
        # The stored input: sealed, input + 48 bytes.
        p = dip(["s3", "ls", "s3://blobs/big/"], e, check_rc=0)
        sizes = [int(line.split()[0]) for line in p.stdout.splitlines()]
        check(len(data) + 48 in sizes, "no object of input + 48 bytes: %r" % sizes)
        svc.stop()
        # Read back after a restart (the sealed multipart object opens).
        svc.start()
        got = svc.get(j["items"][0]["result_url"]).body
        check(got == open(ref, "rb").read(), "result after restart differs")
    finally:
        if svc:
            svc.close()
        proxy.close()
        s3.close()
    print("ok")


main()
