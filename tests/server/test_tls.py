# SPDX-License-Identifier: MIT
# HTTPS: `dip serve --tls-cert --tls-key` with a self-signed certificate made here by openssl (or
# certtool); a job runs over TLS and plain HTTP to the TLS port gets no answer. Skipped (77) when
# neither tool is installed.
import os
import shutil
import subprocess
import sys
import tempfile

from srvutil import Server, check, encode, image

tmp = tempfile.mkdtemp(prefix="dip-tls-")
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
if shutil.which("openssl"):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
elif shutil.which("certtool"):
    tpl = os.path.join(tmp, "tpl")
    with open(tpl, "w") as f:
        f.write("cn = 127.0.0.1\nexpiration_days = 1\ntls_www_server\n")
    subprocess.run(["certtool", "--generate-privkey", "--outfile", key], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template",
                    tpl, "--outfile", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
else:
    print("skip: neither openssl nor certtool")
    sys.exit(77)

s = None
try:
    s = Server("--quiet", tls=(cert, key))
    check(s.banner.startswith("dip serve: https://"), "banner says https: %r" % s.banner)
    check(s.healthy(), "healthz over TLS")
    src = encode(image(64, 64, 3), ".png")
    j = s.submit([("t.png", src)], pipeline="invert", fmt="png").json()
    j = s.wait(j["id"])
    check(j["state"] == "done", "job over TLS")
    r = s.get(j["items"][0]["result_url"])
    check(r.status == 200 and r.body[:4] == b"\x89PNG", "download over TLS")
    # Plain HTTP to the TLS port gets no HTTP answer.
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    try:
        c.request("GET", "/healthz")
        resp = c.getresponse()
        check(resp.status != 200, "plain HTTP answered 200 on the TLS port")
    except (OSError, http.client.HTTPException):
        pass
    finally:
        c.close()
    check(s.healthy(), "still healthy")
    # TLS 1.2 at least (issue 9, finding 8): a client that offers only TLS 1.0 or 1.1 is refused
    # at the handshake; TLS 1.2 and 1.3 complete.
    import socket
    import ssl

    def handshake(lo, hi):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version, ctx.maximum_version = lo, hi
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw) as t:
                    return t.version()
            except (ssl.SSLError, OSError):
                return None

    for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        got = handshake(v, v)
        check(got is None, "a %s handshake completed (%s)" % (v.name, got))
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        got = handshake(v, v)
        check(got is not None, "a %s handshake failed" % v.name)
    # Missing key: refuse to start.
    out = subprocess.run([os.environ.get("DIP", "dip"), "serve", "--listen", "127.0.0.1:0",
                          "--data", os.path.join(tmp, "v"), "--tls-cert", cert],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(out.returncode != 0 and b"tls" in out.stderr.lower(), "cert without key refused")
    print("ok")
finally:
    if s:
        s.close()
    shutil.rmtree(tmp, ignore_errors=True)
